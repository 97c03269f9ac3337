"""The job engine (Orthanc's job model), its store, the shared engine of several nodes, `/jobs`."""
