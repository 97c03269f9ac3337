"""One module or package per DICOMweb service, each taking plain requests to answers."""
