"""The seam to the Orthanc core: `runtime` (the only module importing `orthanc`), and what the
core stores for the plugin (resources, files, index entries, attachments, global properties)."""
