"""The DICOMweb client: remote servers, proxied calls, STOW-RS push and WADO-RS retrieve jobs,
and the web application."""
