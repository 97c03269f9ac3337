"""DICOMweb (QIDO-RS, WADO-RS, STOW-RS, WADO-URI) for Orthanc, as a Python plugin."""

__version__ = "0.1.0"
