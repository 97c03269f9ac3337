"""The series metadata cache: a series' DICOM JSON, kept gzipped in a series attachment.

Computing a series' metadata reads every instance's tags; viewers ask for it again and again.
The answer is therefore computed once (when the series becomes stable, in a background thread,
or at the first request) and stored with the series in the Orthanc database, so that every
Orthanc sharing the database can serve it.

An entry is only used while it matches the series: its key is a digest of the series' current
instances, each with the uuid of its stored file, and of the options that shape the JSON. An
added or removed instance, or one stored again with new content (its file uuid changes), even
one this process was not told about, makes the entry stale, and it is rebuilt. One core call
(`/series/{id}/instances`) gives the uuids of the whole series, and is saved while the change
log shows no store (`series_members`). BulkDataURIs
depend on the host the client used: entries hold them relative (`studies/...`), and
`absolute_bulk_data_uris` completes them per request. Fresh and cached answers go through the
same bytes, so they are identical.

Each instance's dataset is also kept alone, gzipped, in an attachment of the instance, for
instance metadata: reading it costs one small attachment read, whatever the size of the series
(the series entry of a 300-slice CT is 800 kB). It is written when the series entry is rebuilt
and by the first request that computes it; the core drops it with its instance, also when the
instance is overwritten (`OverwriteInstances`).

Answers are kept too, ready to send: a series' or study's JSON answer with absolute
BulkDataURIs, gzipped, for the last DICOMweb base it was asked with (an attachment of the
series or study, under the same kind of key). A repeated request then costs two index calls
and one small attachment read. The attachments' numbers are in `attachments`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import zlib
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...config import Configuration
from ...dicom import json_model as dicom_json
from ...dicom import tags as dicom_tags
from ...dicom.bulk_data_policy import BulkDataPolicy
from ...http.urls import instance_url
from ...orthanc import tags as orthanc_tags
from ...orthanc.core import (
    Core,
    CoreError,
    delete_attachment,
    get_json,
    read_attachment,
    write_attachment,
)
from ...orthanc.series_members import MemberMemo, Members, list_members
from ...orthanc.shared_state import claim
from ...orthanc.storage_ids import (
    INSTANCE_METADATA,
    OFFICIAL_SERIES_METADATA,
    PREPARED_ANSWER,
    SERIES_METADATA,
)

log = logging.getLogger(__name__)

REBUILD_CLAIM_SECONDS = 600
"""How long the node that builds a series' entry (for one set of instances) has it to itself."""

# 3: keys over file uuids; BulkDataURIs and SpecificCharacterSet as the official plugin's.
FORMAT_VERSION = 3
_GZIP = 31  # zlib's wbits for the gzip format
_BULK_DATA_KEY = b'"BulkDataURI":"'
# Answers are compressed once and sent many times: a smaller body is cheaper for the core
# (which gzips plugin answers again when the client accepts gzip) and for the network.
_ANSWER_LEVEL = 6


def relative_bulk_data_uri(study: str, series: str, instance: str, path: Sequence[int]) -> str:
    """`studies/{st}/series/{se}/instances/{i}/bulk/{tag path}`, completed at answer time."""
    return f"{instance_url('', study, series, instance)}/bulk/{dicom_tags.tag_path_text(path)}"


def absolute_bulk_data_uris(body: bytes, base: str) -> bytes:
    """Prefix every relative BulkDataURI of a JSON answer with the request's DICOMweb base.

    In compact JSON, `"BulkDataURI":"` can only be a key: a quote inside a string value is
    escaped. The base is JSON-escaped, since it comes from request headers.
    """
    escaped = json.dumps(base, ensure_ascii=False)[1:-1].encode("utf-8")
    return body.replace(_BULK_DATA_KEY, _BULK_DATA_KEY + escaped)


def join_json_arrays(arrays: Iterable[bytes]) -> bytes:
    """Concatenate compact JSON arrays (`[a,b]`, `[]`, `[c]` -> `[a,b,c]`) without parsing."""
    items = [array[1:-1] for array in arrays if len(array) > 2]
    return b"[" + b",".join(items) + b"]"


def json_array(datasets: Iterable[bytes]) -> bytes:
    """A compact JSON array of encoded datasets."""
    return b"[" + b",".join(datasets) + b"]"


SeriesList = Sequence[tuple[str, Members]]
"""(series id, its members) pairs, in the order of the answer."""


def series_key(config: Configuration, members: Members) -> str:
    """What a series' entry depends on: its instances and their files, the entry format,
    `OtherBinaryMode`."""
    digest = hashlib.sha256(f"{FORMAT_VERSION}\n{config.other_binary_mode}\n".encode())
    for instance, file_uuid in sorted(members):
        digest.update(f"{instance} {file_uuid}\n".encode("ascii", "replace"))
    return digest.hexdigest()


def answer_key(config: Configuration, series: SeriesList) -> str:
    """What the answer joining these series depends on (order included)."""
    keys = (f"{series_id}:{series_key(config, members)}" for series_id, members in series)
    return hashlib.sha256("\n".join(keys).encode("ascii", "replace")).hexdigest()


def pack_entry(key: str, mode: str, datasets: Sequence[tuple[str, bytes]]) -> bytes:
    """What the attachment holds: gzip members that decompress, together, to a one-line JSON
    header then the JSON array of the (instance id, dataset) pairs.

    The header holds the key, the `OtherBinaryMode` of the datasets and, per instance id, the
    offset (after the header's member) and size of the member of its dataset.
    """
    members = []
    index: dict[str, tuple[int, int]] = {}
    offset = 0
    for position, (instance_id, dataset) in enumerate(datasets):
        separator = b"," if position < len(datasets) - 1 else b"]"
        member = gzip.compress(dataset + separator, compresslevel=1, mtime=0)
        index[instance_id] = (offset, len(member))
        offset += len(member)
        members.append(member)
    header = {"Version": FORMAT_VERSION, "Key": key, "Mode": mode, "Instances": index}
    opening = b"\n[" if datasets else b"\n[]"
    first = gzip.compress(json.dumps(header).encode() + opening, compresslevel=1, mtime=0)
    return first + b"".join(members)


def unpack_entry(data: bytes, key: str) -> bytes | None:
    """The cached JSON array if the entry is readable and has this key, else None.

    The members are found through the header's index: `gzip.decompress` copies the rest of
    the data for each member, which costs more than the decompression itself.
    """
    try:
        reader = zlib.decompressobj(_GZIP)
        header, _, opening = reader.decompress(data).partition(b"\n")
        fields = json.loads(header)
        if not isinstance(fields, dict) or fields.get("Key") != key:
            return None
        members = memoryview(reader.unused_data)
        pieces = [zlib.decompress(members[o : o + n], _GZIP) for o, n in _members(fields)]
    except (zlib.error, ValueError, KeyError, TypeError):
        return None  # a corrupt or foreign attachment: treat as missing, it gets replaced
    return opening + b"".join(pieces)


def is_legacy_entry(data: bytes) -> bool:
    """Whether an attachment holds a series entry as this plugin wrote them before format 3,
    in series attachment 4301: gzip, its first member our JSON header."""
    try:
        header = zlib.decompressobj(_GZIP).decompress(data).partition(b"\n")[0]
        fields = json.loads(header)
    except (zlib.error, ValueError):
        return False
    return isinstance(fields, dict) and {"Key", "Mode", "Instances"} <= fields.keys()


def _members(header: dict[str, Any]) -> list[tuple[int, int]]:
    """(offset, size) of each dataset's member, in the order of the array."""
    return [(int(offset), int(size)) for offset, size in header["Instances"].values()]


def pack_instance(mode: str, dataset: bytes) -> bytes:
    """What an instance's attachment holds: a one-line JSON header (the format and the
    `OtherBinaryMode` of the dataset), then the gzipped dataset."""
    header = json.dumps({"Version": FORMAT_VERSION, "Mode": mode}).encode()
    return header + b"\n" + gzip.compress(dataset, compresslevel=1, mtime=0)


def unpack_instance(data: bytes, mode: str) -> bytes | None:
    """The dataset of an instance's attachment if made in this format for `mode`, else None."""
    header, newline, compressed = data.partition(b"\n")
    try:
        fields = json.loads(header)
        if not newline or fields != {"Version": FORMAT_VERSION, "Mode": mode}:
            return None
        return zlib.decompress(compressed, _GZIP)
    except (zlib.error, ValueError):
        return None  # an older, corrupt or foreign attachment: it gets replaced


class InstanceMetadata:
    """Full metadata of single instances, from the core's `/instances/{id}/tags`."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.core = core

    def dataset(self, orthanc_id: str) -> dicom_json.Dataset:
        """One instance's DICOM JSON, with relative BulkDataURIs."""
        return self.dataset_from_tags(orthanc_id, self.tags(orthanc_id))

    def tags(self, orthanc_id: str) -> dict[str, Any]:
        """The core's full tags of an instance."""
        return get_json(self.core, f"/instances/{orthanc_id}/tags")

    def dataset_from_tags(self, orthanc_id: str, tags: dict[str, Any]) -> dicom_json.Dataset:
        uids = resource_uids(tags)
        policy = BulkDataPolicy(
            mode=self.config.other_binary_mode,
            uri_for=lambda path: relative_bulk_data_uri(*uids, path),
            read_binary=lambda path: self._read_value(orthanc_id, path),
        )
        return dicom_json.from_orthanc_tags(tags, policy)

    def encoded(self, orthanc_ids: Iterable[str]) -> list[tuple[str, bytes]]:
        """Each instance's id and compact JSON dataset (relative BulkDataURIs)."""
        return [(i, dicom_json.encode_json(self.dataset(i))) for i in orthanc_ids]

    def _read_value(self, orthanc_id: str, path: Sequence[int]) -> bytes:
        content = orthanc_tags.orthanc_content_path(path)
        return self.core.get(f"/instances/{orthanc_id}/content/{content}")


def resource_uids(tags: dict[str, Any]) -> tuple[str, str, str]:
    """Study, series and SOP instance UIDs of an instance's tags (core's full or short format)."""
    study, series, instance = (_tag_text(tags, key) for key in _UID_KEYS)
    return study, series, instance


_UID_KEYS = ("0020,000d", "0020,000e", "0008,0018")


def _tag_text(tags: dict[str, Any], key: str) -> str:
    value = orthanc_tags.orthanc_text(tags.get(key))
    return value.strip(" \0") if value is not None else ""


class SeriesMetadataCache:
    """Series metadata (relative BulkDataURIs) read from, or written to, the Orthanc database."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.core = core
        self.instances = InstanceMetadata(config, core)
        self.memo = MemberMemo(core)

    def series_members(self, series_id: str, ids: Collection[str] | None = None) -> Members:
        """The series' members (404 if the series is unknown); given the series' instance ids
        as just located, those listed before are reused while still right (`MemberMemo`)."""
        if ids is None:
            return list_members(self.core, series_id)
        return self.memo.members(series_id, ids)

    def series_json(self, series_id: str, members: Members | None = None) -> bytes:
        """The series' metadata as a JSON array: from the cache when valid, else computed."""
        if members is None:
            members = self.series_members(series_id)
        instances = [instance for instance, _ in members]
        if not self.config.enable_metadata_cache:
            return json_array(dataset for _, dataset in self.instances.encoded(instances))
        key = series_key(self.config, members)
        data = read_attachment(self.core, f"/series/{series_id}", SERIES_METADATA)
        cached = None if data is None else unpack_entry(data, key)
        if cached is not None:
            return cached
        datasets = self.instances.encoded(instances)
        if not self.config.read_only:
            self._write_entry(series_id, key, datasets)
        return json_array(dataset for _, dataset in datasets)

    def instance_json(self, instance_id: str) -> bytes | None:
        """One instance's dataset as kept with it; None when it is not (yet) there."""
        if not self.config.enable_metadata_cache:
            return None
        data = read_attachment(self.core, f"/instances/{instance_id}", INSTANCE_METADATA)
        return None if data is None else unpack_instance(data, self.config.other_binary_mode)

    def keep_instance(self, instance_id: str, dataset: bytes) -> None:
        """Keep one instance's dataset with it, for `instance_json`."""
        if self.config.enable_metadata_cache and not self.config.read_only:
            packed = pack_instance(self.config.other_binary_mode, dataset)
            write_attachment(self.core, f"/instances/{instance_id}", INSTANCE_METADATA, packed)

    def rebuild(self, series_id: str) -> None:
        """Compute the series' entry and its instances' datasets again and store them,
        whatever the stored ones say."""
        members = list_members(self.core, series_id)
        key = series_key(self.config, members)
        datasets = self.instances.encoded([instance for instance, _ in members])
        self._write_entry(series_id, key, datasets)
        for instance_id, dataset in datasets:
            self.keep_instance(instance_id, dataset)
        self._retire_legacy_entry(series_id)

    def _retire_legacy_entry(self, series_id: str) -> None:
        """Remove an entry this plugin wrote before format 3 in 4301, the official plugin's
        number, where a newer official plugin would take it for its own cache."""
        resource = f"/series/{series_id}"
        data = read_attachment(self.core, resource, OFFICIAL_SERIES_METADATA)
        if data is not None and is_legacy_entry(data):
            delete_attachment(self.core, resource, OFFICIAL_SERIES_METADATA)

    def rebuild_study(self, study_id: str) -> list[str]:
        """Rebuild the entries of every series of a study; returns the series ids."""
        series_ids = list(get_json(self.core, f"/studies/{study_id}")["Series"])
        for series_id in series_ids:
            self.rebuild(series_id)
        return series_ids

    def _write_entry(self, series_id: str, key: str, datasets: Sequence[tuple[str, bytes]]) -> None:
        entry = pack_entry(key, self.config.other_binary_mode, datasets)
        write_attachment(self.core, f"/series/{series_id}", SERIES_METADATA, entry)


def pack_answer(key: str, base: str, body: bytes) -> bytes:
    """What a prepared answer's attachment holds: a one-line JSON header (key and base), then
    the gzipped answer."""
    header = json.dumps({"Key": key, "Base": base}).encode()  # ASCII, newlines escaped
    return header + b"\n" + gzip.compress(body, compresslevel=_ANSWER_LEVEL, mtime=0)


def unpack_answer(data: bytes, key: str, base: str) -> bytes | None:
    """The gzipped answer if it was made with this key for this base, else None."""
    header, newline, compressed = data.partition(b"\n")
    try:
        fields = json.loads(header)
    except ValueError:
        return None  # a corrupt or foreign attachment: it gets replaced
    if not newline or not isinstance(fields, dict):
        return None
    return compressed if fields.get("Key") == key and fields.get("Base") == base else None


class PreparedAnswers:
    """JSON answers (absolute BulkDataURIs, kept gzipped) of series and studies, one base each."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.core = core
        self.enabled = config.enable_metadata_cache
        self.writable = config.enable_metadata_cache and not config.read_only

    def read(self, resource: str, key: str, base: str) -> bytes | None:
        """The resource's (`/series/{id}`, `/studies/{id}`) JSON answer, if up to date.

        It is decompressed here (~2 ms): the core gzips plugin answers itself when the client
        accepts it, and handing it gzip would make "Content-Encoding: gzip, gzip", which clients
        that undo one coding only cannot read.
        """
        if not self.enabled:
            return None
        data = read_attachment(self.core, resource, PREPARED_ANSWER)
        compressed = None if data is None else unpack_answer(data, key, base)
        return None if compressed is None else zlib.decompress(compressed, _GZIP)

    def write(self, resource: str, key: str, base: str, body: bytes) -> bool:
        """Keep the answer; False when it cannot be kept."""
        if not self.writable:
            return False
        packed = pack_answer(key, base, body)
        return write_attachment(self.core, resource, PREPARED_ANSWER, packed)


ChangeListener = Callable[[str, str, str], None]


def change_listener(
    config: Configuration, core: Core, wait_until_idle: Callable[[], None] = lambda: None
) -> ChangeListener:
    """A `runtime.add_change_listener` callback that caches series as they become stable.

    The work runs in one background thread: the core's calls hold the GIL in plugin 4.0, so
    more threads would not go faster, and the REST callback that reported the change returns
    at once. Each rebuild first waits for a quiet moment (`wait_until_idle`), so that caching
    does not slow down the requests being served, such as a STOW-RS upload in progress.
    """
    cache = SeriesMetadataCache(config, core)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dicomweb-metadata-cache")

    def claim_name(series_id: str) -> str:
        return f"series-metadata:{series_id}:{series_key(config, cache.series_members(series_id))}"

    def rebuild_quietly(series_id: str) -> None:
        wait_until_idle()
        try:
            # Nodes sharing a database are each told the series is stable: one builds it.
            if claim(core, lambda: claim_name(series_id), REBUILD_CLAIM_SECONDS):
                cache.rebuild(series_id)
        except Exception as error:  # the worker must survive whatever a rebuild meets
            if isinstance(error, CoreError) and error.status == 404:
                # The core reports series stable even after their deletion.
                log.info("series %s deleted before its metadata cache was built", series_id)
            else:
                log.exception("metadata cache of series %s not rebuilt", series_id)

    def on_change(change: str, level: str, resource_id: str) -> None:
        wanted = config.enable and config.enable_metadata_cache and not config.read_only
        if change == "STABLE_SERIES" and wanted:
            worker.submit(rebuild_quietly, resource_id)

    return on_change
