"""Copies of the core's index entries (expanded studies and series) kept between searches.

Every study a QIDO-RS search answers needs its series (ModalitiesInStudy,
NumberOfStudyRelatedInstances) and every series its study's attributes: on Orthanc 1.10.1 that
is one more core call per result, which doubles or triples the time of a search (measured:
100 studies matching `PatientName=M*`, /tools/find 13.5 ms, their series 20 ms more). Index
entries only change when resources are stored or deleted, so this process keeps copies and
trusts them while the database says nothing was:

- the core's change log, in the database and so shared by every Orthanc using it: a change of
  any kind but the harmless ones (attachments, metadata, stability) since the last check drops
  every copy;
- deletions, which Orthanc 1.10.1 does not log: an Orthanc running this plugin drops its own
  copies when told of a deletion and writes a new random token into a global property; a
  token other than the one last seen drops every copy.

A dropped cache refills from the next searches. Entries are treated as read-only values.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from .core import Core, GlobalProperties, get_json

log = logging.getLogger(__name__)

DELETION_TOKEN_PROPERTY = 5302
DEFAULT_CAPACITY = 20_000
# Changes that leave the index entries as they were.
HARMLESS_CHANGES = frozenset(
    {
        "UpdatedAttachment",
        "UpdatedMetadata",
        "StableSeries",
        "StableStudy",
        "StablePatient",
        "CompletedSeries",
        "JobSubmitted",
        "JobSuccess",
        "JobFailure",
        "UpdatedPeers",
        "UpdatedModalities",
        "OrthancStarted",
        "OrthancStopped",
    }
)
CHANGES_PAGE = 100


class IndexCache:
    """Entries by key (expanded resources by their core URI, `/studies/{id}`, and what is
    derived from them), valid while the database is unchanged; call `validate` before using
    it for a request. A capacity of 0 keeps nothing."""

    def __init__(self, core: Core, capacity: int = DEFAULT_CAPACITY) -> None:
        self.core = core
        self.properties = core if isinstance(core, GlobalProperties) else None
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._last_change: int | None = None
        self._token = ""
        self._deleted = threading.Event()
        self._token_writer: threading.Thread | None = None

    def validate(self) -> bool:
        """Drop every copy the database may have outdated; True if copies remain."""
        if not self.capacity:
            return False
        token = self._read_token()
        changes = self._changes_since(self._last_change)
        with self._lock:
            outdated = token != self._token or not _only_harmless(changes)
            if outdated or self._last_change is None or changes["Last"] < self._last_change:
                self._entries.clear()
            self._token = token
            self._last_change = changes["Last"]
            return bool(self._entries)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, entry: Any) -> None:
        if not self.capacity:
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def change_listener(self, change: str, level: str, resource_id: str) -> None:
        """A `runtime.add_change_listener` callback: deletions drop every copy, here and, through
        the token, in the other Orthancs of the database."""
        if change != "DELETED":
            return
        with self._lock:
            self._entries.clear()
        if self.properties is not None:
            self._deleted.set()
            self._start_token_writer()

    def _read_token(self) -> str:
        if self.properties is None:
            return ""
        return self.properties.get_global_property(DELETION_TOKEN_PROPERTY)

    def _changes_since(self, last: int | None) -> dict[str, Any]:
        if last is None:
            return get_json(self.core, "/changes?last") | {"Changes": [], "Done": True}
        return get_json(self.core, f"/changes?since={last}&limit={CHANGES_PAGE}")

    def _start_token_writer(self) -> None:
        with self._lock:
            if self._token_writer is None:
                self._token_writer = threading.Thread(
                    target=self._write_tokens, name="dicomweb-index-token", daemon=True
                )
                self._token_writer.start()

    def _write_tokens(self) -> None:
        """One new token per burst of deletions (deleting a study reports each instance)."""
        assert self.properties is not None
        while True:
            self._deleted.wait()
            self._deleted.clear()
            try:
                self.properties.set_global_property(DELETION_TOKEN_PROPERTY, uuid.uuid4().hex)
            except Exception:  # the next deletion writes again; searches must not stop
                log.exception("deletion token not written")


def _only_harmless(changes: dict[str, Any]) -> bool:
    """Whether a page of the change log is complete and holds only harmless changes."""
    return bool(changes.get("Done")) and all(
        change.get("ChangeType") in HARMLESS_CHANGES for change in changes["Changes"]
    )
