"""Instance summaries: per series, the attributes QIDO-RS answers that the core does not index.

At instance level every answer holds SOPClassUID, Rows, Columns, BitsAllocated... which
Orthanc 1.10.1 does not index: reading an instance's tags costs ~2 ms for a CT slice, parsing
a series' whole metadata (its cache entry) ~130 ms for 300 slices. A summary holds only those
attributes of every instance of the series, in a series attachment (a few hundred bytes
per instance, compressed), so one small read serves a whole page.

Entries are keyed by instance id and hold the FileUuid of the instance they were read from,
which the core changes when an instance is stored again: an entry is only used while it
matches. The search decides how missing entries are read, then writes the summary back.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...config import Configuration
from ...dicom import json_model as dicom_json
from ...dicom import tags as dicom_tags
from ...orthanc.core import Core, loads, read_attachment, write_attachment
from ...orthanc.storage_ids import INSTANCE_SUMMARIES

SUMMARY_ATTACHMENT = INSTANCE_SUMMARIES
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """One instance's summarised attributes (DICOM JSON) and the file they were read from."""

    file_uuid: str
    dataset: dicom_json.Dataset


Summary = dict[str, Entry]


def pack_summary(tags: Iterable[int], summary: Mapping[str, Entry]) -> bytes:
    """The attachment's bytes: zlib-compressed JSON with the summarised tags and the entries."""
    document = {
        "Version": FORMAT_VERSION,
        "Tags": sorted(tags),
        "Instances": {i: [entry.file_uuid, entry.dataset] for i, entry in summary.items()},
    }
    return zlib.compress(dicom_json.encode_json(document), 1)


def unpack_summary(data: bytes, tags: Iterable[int]) -> Summary:
    """The entries of a summary of these tags; none if it is corrupt, foreign or of other tags."""
    try:
        document = loads(zlib.decompress(data))
        if document["Version"] != FORMAT_VERSION or document["Tags"] != sorted(tags):
            return {}
        return {i: Entry(uuid, dataset) for i, (uuid, dataset) in document["Instances"].items()}
    except (zlib.error, ValueError, KeyError, TypeError):
        return {}  # replaced at the next write


class InstanceSummaries:
    """Read and write the summaries of series, for a given set of summarised tags."""

    def __init__(self, config: Configuration, core: Core, tags: frozenset[int]) -> None:
        self.config = config
        self.core = core
        self.tags = tags

    def read(self, series_id: str) -> Summary:
        data = read_attachment(self.core, f"/series/{series_id}", SUMMARY_ATTACHMENT)
        return {} if data is None else unpack_summary(data, self.tags)

    def write(self, series_id: str, summary: Mapping[str, Entry]) -> None:
        if self.config.read_only:
            return
        data = pack_summary(self.tags, summary)
        write_attachment(self.core, f"/series/{series_id}", SUMMARY_ATTACHMENT, data)

    def entry(self, file_uuid: str, dataset: Mapping[str, Any]) -> Entry:
        """An entry of the summarised attributes of a dataset (which may hold more)."""
        keys = (dicom_tags.tag_key(tag) for tag in sorted(self.tags))
        return Entry(file_uuid, {key: dataset[key] for key in keys if key in dataset})
