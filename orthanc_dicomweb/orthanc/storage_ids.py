"""The numbers under which the plugin keeps data in the Orthanc database, in one place:
attachments of resources, and global properties.

Attachment numbers from 1024 up are free for plugins to use. A site may switch between this
plugin and the official C++ plugin on one database, so the two must not share a number: the
official plugin (from release 1.15) keeps its series metadata cache in series attachment 4301,
in a format of its own. This plugin never writes that attachment, and its own are elsewhere,
so that neither plugin takes the other's cache for its own; it only reads it when it rebuilds
a series, to remove an entry in its own old format (versions before 2026-12 used 4301 to
4304). Whatever a number of ours holds in another format is ignored and replaced (each reader
checks the format first).

Global properties from 1024 up are free for plugins too. The official plugin keeps its servers
in 5468; ours are from 5300 up, and those from 5300 to 5399 are shared by every Orthanc of a
PostgreSQL index (`shared_state`).
"""

from __future__ import annotations

OFFICIAL_SERIES_METADATA = 4301
"""The official plugin's series metadata cache: left alone, unless it holds our old format."""

SERIES_METADATA = 4391
"""Of a series: its DICOM JSON, one gzip member per instance (`metadata_cache`)."""

PREPARED_ANSWER = 4392
"""Of a series or a study: its metadata answer ready to send, gzipped (`metadata_cache`)."""

INSTANCE_SUMMARIES = 4393
"""Of a series: the attributes QIDO-RS answers that the core does not index (`qido_summary`)."""

INSTANCE_METADATA = 4394
"""Of an instance: its own DICOM JSON dataset, gzipped (`metadata_cache`)."""

SERVERS_PROPERTY = 5301
"""Global property: the server definitions when `ServersInDatabase` is true (`servers`)."""

OFFICIAL_SERVERS_PROPERTY = 5468
"""Global property where the official plugin keeps its servers (same JSON format): adopted by a
database that has none of ours yet, so that switching plugins keeps the servers; never written."""

DELETION_TOKEN_PROPERTY = 5302
"""Global property changed at each deletion, so every node drops its copies (`index_cache`)."""

SHARED_PROPERTIES = range(5300, 5400)
"""The global properties that the shared store holds on a PostgreSQL index (`shared_state`)."""

JOBS_INDEX_PROPERTY = 5310
"""Global property holding `{job id: property id}` of the saved jobs (`jobs`)."""

FIRST_JOB_PROPERTY = 5400
"""Saved jobs use the global properties from here on, one each."""
