"""WADO-RS Retrieve Metadata and the series metadata cache behind it."""
