"""DICOM encodings (JSON and XML models, tags, values, transfer syntaxes) and pixels."""
