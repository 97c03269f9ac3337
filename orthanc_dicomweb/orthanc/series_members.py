"""A series' members: its instances with the uuid of each one's stored file, which the keys of
the metadata cache cover (the core gives an instance stored again a new file, same id).

The core lists them in one call, `/series/{id}/instances`, which costs it about 11 ms for 300
instances (it describes every instance), where the instance ids alone come with the call that
locates the series. `MemberMemo` therefore keeps the members last listed and reuses them while
the database shows that no file can have changed. The core's change log is in the database
(shared by every Orthanc using it; sequence numbers are never reused) and records every
instance stored, also one stored again (a NewInstance change), but not deletions, which the
instance ids show. Members listed at change S are still right while the series has the same
instance ids and no change after S stores anything (only attachments, metadata, stability...:
`index_cache.HARMLESS_CHANGES`). Any other change, anywhere, lists the series again.

Within one request the members are found once (`request_scope`): series metadata needs them for
its ETag (`http.caching`) and for its answer (the metadata cache's key).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from .core import Core, get_json
from .index_cache import HARMLESS_CHANGES
from .request_scope import once

Member = tuple[str, str]
"""An instance id and the uuid of its stored file."""

Members = Sequence[Member]
"""A series' members, in the core's order."""

CAPACITY = 256  # series kept (a 300-instance series' members take about 40 kB)
CHANGES_PAGE = 20  # changes read at most: beyond, listing the series again is as cheap


def member(instance: dict[str, Any]) -> Member:
    """The member of an instance as the core describes it (`/instances/{id}`)."""
    return instance["ID"], instance["FileUuid"]


def list_members(core: Core, series_id: str) -> list[Member]:
    """The series' members, in the core's order (404 if the series is unknown)."""
    return [member(instance) for instance in get_json(core, f"/series/{series_id}/instances")]


@dataclass
class _Listed:
    change: int  # the last change of the log when the members were listed or last checked
    members: list[Member]


class MemberMemo:
    """Members of series, listed once and checked against the change log (one cheap call)."""

    def __init__(self, core: Core, capacity: int = CAPACITY) -> None:
        self.core = core
        self.capacity = capacity
        self._listed: OrderedDict[str, _Listed] = OrderedDict()
        self._lock = threading.Lock()

    def members(self, series_id: str, ids: Collection[str]) -> list[Member]:
        """The members of the series, whose instance ids are now `ids` (once per request)."""
        return once(("series members", series_id), lambda: self._members(series_id, ids))

    def _members(self, series_id: str, ids: Collection[str]) -> list[Member]:
        last = self._last_change()  # read first: a store after it shows as a later change
        with self._lock:
            listed = self._listed.get(series_id)
        if listed is not None and _same_ids(listed.members, ids) and self._quiet(listed, last):
            self._keep(series_id, _Listed(last, listed.members))
            return listed.members
        members = list_members(self.core, series_id)
        self._keep(series_id, _Listed(last, members))
        return members

    def _last_change(self) -> int:
        return int(get_json(self.core, "/changes?last")["Last"])

    def _quiet(self, listed: _Listed, last: int) -> bool:
        """Whether no change since the members were listed can have stored an instance."""
        if last == listed.change:
            return True
        page = get_json(self.core, f"/changes?since={listed.change}&limit={CHANGES_PAGE}")
        changes = page.get("Changes", [])
        return bool(page.get("Done")) and all(c["ChangeType"] in HARMLESS_CHANGES for c in changes)

    def _keep(self, series_id: str, listed: _Listed) -> None:
        with self._lock:
            self._listed[series_id] = listed
            self._listed.move_to_end(series_id)
            while len(self._listed) > self.capacity:
                self._listed.popitem(last=False)


def _same_ids(members: Members, ids: Collection[str]) -> bool:
    return len(members) == len(ids) and {instance for instance, _ in members} == set(ids)
