"""Copies of the core's index entries (expanded studies and series) kept between searches.

Every study a QIDO-RS search answers needs its series (ModalitiesInStudy,
NumberOfStudyRelatedInstances) and every series its study's attributes: on Orthanc 1.10.1 that
is one more core call per result, which doubles or triples the time of a search (measured:
100 studies matching `PatientName=M*`, /tools/find 13.5 ms, their series 20 ms more). Index
entries only change when resources are stored or deleted, so this process keeps copies, each
resource with what is derived from it (its DICOM JSON, answers), and trusts them while the
database says nothing changed them:

- the core's change log, in the database and so shared by every Orthanc using it, read from
  the last change seen before each search: a new instance drops the copies of its series and
  study (found with one core call; beyond `RESOLVED_AT_MOST` new instances, or if one is gone
  already, every copy is dropped); attachments, metadata and stability changes drop nothing;
  any other change drops every copy;
- deletions, which Orthanc 1.10.1 does not log: an Orthanc running this plugin drops its own
  copies when told of a deletion and writes a new random token into a global property; a
  token other than the one last seen drops every copy.

Dropped copies are read again by the next searches. Values are treated as read-only.

The same reading gives the database's revision (`revision`), which the ETags of searches over
the whole database hash (`http.caching`): the sequence number of the last change that can
alter an answer (not attachments, metadata, stability: the metadata cache's own writes must not
change it), the deletion token, and the deletions this process was told of (a deletion changes
the revision here as soon as Orthanc reports it, on other nodes once the token is written).
The log is read once per request (`request_scope`), for the ETag and the search alike.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from .core import Core, GlobalProperties, get_if_exists, get_json, loads
from .request_scope import once
from .storage_ids import DELETION_TOKEN_PROPERTY

log = logging.getLogger(__name__)

# Resources kept (a study and its series are two): ~5.6 kB a study with its series and kept
# datasets (qido_answers), so about 55 MB when full (measured on 10,000 studies' entries).
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
# Changes that come with a new instance (its NewInstance change says what it makes stale).
NEW_RESOURCE_CHANGES = frozenset({"NewInstance", "NewSeries", "NewStudy", "NewPatient"})
# Changes after which not every copy must go.
SELECTIVE_CHANGES = HARMLESS_CHANGES | NEW_RESOURCE_CHANGES
CHANGES_PAGE = 100
# New instances whose series and study are looked up; more drop every copy (one core call each).
RESOLVED_AT_MOST = 30
RESOURCE = "resource"
"""The aspect of a resource's entry holding the expanded resource itself."""


class IndexCache:
    """Expanded resources by their core URI (`/studies/{id}`), each with other aspects derived
    from it, valid while the database is unchanged; call `validate` before using it for a
    request. Capacity counts resources; 0 keeps nothing."""

    def __init__(self, core: Core, capacity: int = DEFAULT_CAPACITY) -> None:
        self.core = core
        self.properties = core if isinstance(core, GlobalProperties) else None
        self.capacity = capacity
        self._entries: OrderedDict[str, dict[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._last_change: int | None = None
        self._significant = 0  # the last change seen that can alter an answer
        self._deletions = 0  # deletions this process was told of
        self._token = ""
        self._deleted = threading.Event()
        self._token_writer: threading.Thread | None = None

    def validate(self) -> bool:
        """Drop the copies the database may have outdated; True if copies remain."""
        if not self.capacity:
            return False
        self._observe()
        with self._lock:
            return bool(self._entries)

    def revision(self) -> str:
        """The database's revision (module doc): changes when a search's answer may."""
        self._observe()
        with self._lock:
            return f"{self._significant}.{self._token}.{self._deletions}"

    def _observe(self) -> None:
        """Read what changed in the database, once per request."""
        once((self, "observe"), self._read_changes)

    def _read_changes(self) -> None:
        token = self._read_token()
        changes = self._changes_since(self._last_change)
        with self._lock:
            log_reset = self._last_change is None or changes["Last"] < self._last_change
            drop_all = token != self._token or log_reset or not self.capacity
        # Outside the lock: finding what new instances made stale takes core calls.
        stale = None if drop_all else self._stale_resources(changes)
        with self._lock:
            if stale is None:
                self._entries.clear()
            else:
                for uri in stale:
                    self._entries.pop(uri, None)
            # Never backwards (sequence numbers are never reused): an older revision string
            # must not come back for newer content.
            significant = last_significant_change(changes) if not log_reset else changes["Last"]
            self._significant = max(self._significant, significant)
            self._token = token
            self._last_change = changes["Last"]

    def get(self, uri: str, aspect: Hashable = RESOURCE) -> Any | None:
        with self._lock:
            entry = self._entries.get(uri)
            if entry is None or aspect not in entry:
                return None
            self._entries.move_to_end(uri)
            return entry[aspect]

    def put(self, uri: str, value: Any, aspect: Hashable = RESOURCE) -> None:
        if not self.capacity:
            return
        with self._lock:
            self._entries.setdefault(uri, {})[aspect] = value
            self._entries.move_to_end(uri)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def change_listener(self, change: str, level: str, resource_id: str) -> None:
        """A `runtime.add_change_listener` callback: deletions drop every copy, here and, through
        the token, in the other Orthancs of the database."""
        if change != "DELETED":
            return
        with self._lock:
            self._entries.clear()
            self._deletions += 1
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
        changes = get_json(self.core, f"/changes?since={last}&limit={CHANGES_PAGE}")
        if changes.get("Done"):
            return changes
        # More than a page: every copy goes, and the log is read on from its end. Going on from
        # the page's end dropped every copy at each of the next searches, one page of changes
        # at a time (after 9,000 new studies, "all studies" of 10,000 cost 1 s of CPU each
        # time, against 0.13 s once warm).
        return get_json(self.core, "/changes?last") | {"Changes": [], "Done": False}

    def _stale_resources(self, changes: dict[str, Any]) -> set[str] | None:
        """The URIs of the resources these changes outdated; None for "maybe any"."""
        if not changes.get("Done"):
            return None
        new_instances = []
        for change in changes["Changes"]:
            kind = change.get("ChangeType")
            if kind == "NewInstance":
                new_instances.append(change["ID"])
            elif kind not in SELECTIVE_CHANGES:
                return None
        if len(new_instances) > RESOLVED_AT_MOST:
            return None
        stale = set()
        for instance in new_instances:
            series = get_if_exists(self.core, f"/instances/{instance}/series")
            if series is None:  # deleted already: which study it changed is unknown
                return None
            parents = loads(series)
            stale |= {f"/series/{parents['ID']}", f"/studies/{parents['ParentStudy']}"}
        return stale

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


def last_significant_change(changes: dict[str, Any]) -> int:
    """The sequence number of the last change read that can alter an answer; the log's last
    when the changes were not all read (more than a page)."""
    if not changes.get("Done"):
        return int(changes["Last"])
    significant = 0
    for change in changes["Changes"]:
        if change.get("ChangeType") not in HARMLESS_CHANGES:
            significant = int(change["Seq"])
    return significant
