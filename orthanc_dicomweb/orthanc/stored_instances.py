"""An instance as stored: located by its SOP Instance UID and read once, header and pixels.

Shared by Retrieve Rendered, WADO-URI and Retrieve Frames. An instance file up to
`WHOLE_FILE_LIMIT` is read whole (past the REST router when the core allows it) and parsed by
pydicom for the `header.HEADER_KEYS` only: its header, LUTs and pixel data then come from
that one call, and the parsed file is kept for the next requests (`ParsedFiles`). Larger files
are described by the core's `/tags?short` JSON, and their pixels are read a frame at a time by
the caller.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

from pydicom.dataset import Dataset

from ..dicom import header, image_output, transfer_syntax
from ..dicom.header import DatasetTags, PixelFormat, Tags, tag_text
from .core import Core, DirectInstanceAccess, ListedFile, get_json
from .resources import lookup_ids

log = logging.getLogger(__name__)

# Files up to this size are read whole (one call, ~0.1 ms for 512x512 CT); larger ones, often
# long multi-frame objects, are read tag JSON plus one frame at a time.
WHOLE_FILE_LIMIT = 16 * 1024 * 1024
# File bytes of the parsed files kept between requests, per Orthanc process.
PARSED_FILES_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Instance:
    """An instance's header, its transfer syntax, and its parsed file when that was read."""

    orthanc_id: str
    tags: Tags
    transfer_syntax: str
    dataset: Dataset | None = field(default=None, compare=False)
    """Set for little-endian files only: their stored bytes are what the core would give."""

    @property
    def sop_class(self) -> str:
        return tag_text(self.tags, "0008,0016") or ""

    @cached_property
    def format(self) -> PixelFormat:
        return PixelFormat.from_tags(self.tags)

    def belongs_to(self, study: str | None, series: str | None) -> bool:
        """Whether the instance's own study and series UIDs are those given (None: any)."""
        same_study = study is None or study == tag_text(self.tags, "0020,000d")
        return same_study and (series is None or series == tag_text(self.tags, "0020,000e"))

    def frame_ms(self) -> float:
        return header.tag_number(self.tags, "0018,1063") or image_output.DEFAULT_GIF_FRAME_MS


class ParsedFiles:
    """Instances read whole and parsed, kept by their file's storage uuid, least recently used
    first out beyond `capacity` file bytes.

    Viewers ask for the frames of one multi-frame instance one by one, and for several
    renderings of one image (windows, sizes): each would read and parse the whole file again.
    An entry needs no other validation: the core never changes a stored file (an instance
    stored again gets a new one), and every Orthanc on the database sees the same uuids.
    """

    def __init__(self, capacity: int = PARSED_FILES_BYTES) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[Instance, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, uuid: str) -> Instance | None:
        with self._lock:
            entry = self._entries.get(uuid)
            if entry is None:
                return None
            self._entries.move_to_end(uuid)
            return entry[0]

    def put(self, uuid: str, instance: Instance, size: int) -> None:
        """Keep a parsed file of `size` bytes (once, if two requests read it at once)."""
        if self.capacity == 0 or size > self.capacity:
            return
        with self._lock:
            replaced = self._entries.pop(uuid, None)
            self._size += size - (replaced[1] if replaced else 0)
            self._entries[uuid] = (instance, size)
            while self._size > self.capacity:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._size -= dropped

    def __len__(self) -> int:
        return len(self._entries)


class InstanceReader:
    """Finds and reads stored instances with as few core calls as the core allows; files up to
    `whole_file_limit` bytes (default `WHOLE_FILE_LIMIT`) are read whole, and kept parsed in
    `files` when given (else none is kept)."""

    def __init__(
        self, core: Core, whole_file_limit: int | None = None, files: ParsedFiles | None = None
    ) -> None:
        self.core = core
        self.whole_file_limit = whole_file_limit
        self.files = files if files is not None else ParsedFiles(capacity=0)
        # Checked once: isinstance of a runtime Protocol costs ~20 us, per instance retrieved.
        self._direct = isinstance(core, DirectInstanceAccess)

    def lookup(self, sop_uid: str) -> str | None:
        """The Orthanc id of an instance, from the core's UID index (cheaper than /tools/find)."""
        if self._direct:
            return self.core.lookup_instance(sop_uid)  # type: ignore[attr-defined]
        return next(iter(lookup_ids(self.core, sop_uid, "Instance")), None)

    def load(self, orthanc_id: str) -> Instance:
        base = f"/instances/{orthanc_id}"
        limit = WHOLE_FILE_LIMIT if self.whole_file_limit is None else self.whole_file_limit
        stored = get_json(self.core, base + "/attachments/dicom/info")
        size, uuid = int(stored["UncompressedSize"]), str(stored["Uuid"])
        if size <= limit:
            kept = self.files.get(uuid)
            if kept is not None:
                return kept
            instance = self._read_whole(orthanc_id)
            if instance is not None:
                self.files.put(uuid, instance, size)
                return instance
        tags = get_json(self.core, base + "/tags?short")
        syntax = self.core.get(base + "/metadata/TransferSyntax").decode()
        return Instance(orthanc_id, tags, syntax.strip())

    def _read_whole(self, orthanc_id: str) -> Instance | None:
        """The instance from its whole file; None when pydicom cannot parse it."""
        dataset = _parsed(self.file(orthanc_id), orthanc_id)
        if dataset is None:
            return None
        syntax = str(dataset.file_meta.get("TransferSyntaxUID", ""))
        little_endian = dataset if syntax != transfer_syntax.EXPLICIT_BIG_ENDIAN else None
        return Instance(orthanc_id, DatasetTags(dataset), syntax, little_endian)

    def file(self, orthanc_id: str, listed: ListedFile | None = None) -> bytes:
        """The stored file (`listed`: its place from a listing, when the caller has it)."""
        if self._direct:
            return self.core.instance_file(orthanc_id, listed)  # type: ignore[attr-defined]
        return self.core.get(f"/instances/{orthanc_id}/file")


def _parsed(data: bytes, orthanc_id: str) -> Dataset | None:
    """The file parsed by pydicom; None (the core's JSON is then used) if pydicom refuses what
    DCMTK accepted."""
    try:
        return header.read_header(data)
    except Exception as error:  # pydicom fails in many ways on odd files; the core is the fallback
        log.info("pydicom cannot parse instance %s (%s): using the core's tags", orthanc_id, error)
        return None
