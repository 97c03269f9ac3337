"""DICOM UIDs in request paths, and finding the Orthanc resources they name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import HttpError, bad_request, not_found
from .core import Core, UidLookup, get_if_exists, loads, post_json

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_ORTHANC_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{8}){4}")
_UID_KEYS = {"Study": "StudyInstanceUID", "Series": "SeriesInstanceUID"}
_PARENT_LEVEL = {"Series": "Study", "Instance": "Series"}
_PLURAL = {"Study": "studies", "Series": "series", "Instance": "instances"}


def validate_uid(uid: str, what: str = "UID") -> str:
    """A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1)."""
    if not uid or len(uid) > 64 or not _UID.match(uid):
        raise bad_request(f"Malformed {what}: {uid!r}")
    return uid


def is_orthanc_id(value: object) -> bool:
    """An Orthanc identifier: five dash-separated groups of 8 lower-case hex digits."""
    return isinstance(value, str) and _ORTHANC_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class ResourcePath:
    """The DICOM UIDs a DICOMweb path names, from study down to instance."""

    study: str
    series: str | None = None
    instance: str | None = None

    @classmethod
    def from_groups(cls, groups: tuple[str, ...]) -> ResourcePath:
        names = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
        uids = [validate_uid(uid, name) for uid, name in zip(groups, names, strict=False)]
        return cls(*uids)

    @property
    def level(self) -> str:
        if self.instance:
            return "Instance"
        return "Series" if self.series else "Study"

    def describe(self) -> str:
        parts = [f"study {self.study}"]
        if self.series:
            parts.append(f"series {self.series}")
        if self.instance:
            parts.append(f"instance {self.instance}")
        return ", ".join(parts)


def _query(path: ResourcePath) -> dict[str, str]:
    query = {"StudyInstanceUID": path.study}
    if path.series:
        query["SeriesInstanceUID"] = path.series
    if path.instance:
        query["SOPInstanceUID"] = path.instance
    return query


def lookup_ids(core: Core, uid: str, level: str) -> list[str]:
    """Orthanc ids of the resources of a level ("Study", "Series", "Instance") with this UID.

    The core's `/tools/lookup` is cheaper than `/tools/find`, but does not check parent UIDs:
    the caller does, where it matters.
    """
    found = loads(core.post("/tools/lookup", uid.encode()) or b"[]")
    return [candidate["ID"] for candidate in found if candidate.get("Type") == level]


def find_orthanc_ids(core: Core, path: ResourcePath) -> list[str]:
    """Orthanc ids of the resources at the path's level (the parent UIDs must match too)."""
    looked_up = _looked_up(core, path, path.level)
    if looked_up is not None:
        return [resource["ID"] for resource in looked_up]
    request = {"Level": path.level, "Query": _query(path), "Expand": False}
    return post_json(core, "/tools/find", request)


def find_resources(
    core: Core, path: ResourcePath, level: str | None = None
) -> list[dict[str, Any]]:
    """The core's descriptions (`/series/{id}` and the like) of the resources of a level
    (default: the path's) under the path: one call, where locating then reading costs two."""
    level = level or path.level
    looked_up = _looked_up(core, path, level)
    if looked_up is not None:
        return looked_up
    request = {"Level": level, "Query": _query(path), "Expand": True}
    return post_json(core, "/tools/find", request)


def _looked_up(core: Core, path: ResourcePath, level: str) -> list[dict[str, Any]] | None:
    """`find_resources` through the core's UID index (`core.UidLookup`; one lookup: each costs
    16-19 ms at 50,000 studies): the path's resource, or a study's series. None when the index
    cannot tell (no such lookup, the UID unknown or naming several resources): `/tools/find`
    then tells a 404 from a 409."""
    if not isinstance(core, UidLookup) or level not in (path.level, "Series"):
        return None
    if level != path.level and path.level != "Study":
        return None
    lookups = {
        "Study": core.lookup_study,
        "Series": core.lookup_series,
        "Instance": core.lookup_instance,
    }
    orthanc_id = lookups[path.level](path.instance or path.series or path.study)
    if orthanc_id is None:
        return None
    if level != path.level:  # the study's series
        return list(loads(get_if_exists(core, f"/studies/{orthanc_id}/series") or b"[]"))
    resource = _described(core, level, orthanc_id)
    if resource is None:  # deleted meanwhile
        return []
    return [resource] if _has_parents(core, path, resource) else []


def _has_parents(core: Core, path: ResourcePath, resource: dict[str, Any]) -> bool:
    """Whether the resource's parents have the path's UIDs (read by id: below a millisecond
    each, where another lookup would cost 16-19 ms)."""
    uids = {"Study": path.study, "Series": path.series}
    level = resource["Type"]
    while level in _PARENT_LEVEL:
        level = _PARENT_LEVEL[level]
        parent = _described(core, level, resource[f"Parent{level}"])
        if parent is None or parent["MainDicomTags"].get(_UID_KEYS[level]) != uids[level]:
            return False
        resource = parent
    return True


def _described(core: Core, level: str, orthanc_id: str) -> dict[str, Any] | None:
    """The core's description of a resource (`/series/{id}`), None if it is not there."""
    found = get_if_exists(core, f"/{_PLURAL[level]}/{orthanc_id}")
    return None if found is None else dict(loads(found))


def locate(core: Core, path: ResourcePath) -> str:
    """The Orthanc id of the resource the path names; 404 when it is unknown."""
    return only_one(find_orthanc_ids(core, path), path)


def locate_resource(core: Core, path: ResourcePath) -> dict[str, Any]:
    """The core's description of the resource the path names; 404 when it is unknown."""
    found = find_resources(core, path)
    only_one([resource["ID"] for resource in found], path)
    return found[0]


def only_one(orthanc_ids: list[str], path: ResourcePath) -> str:
    """The one Orthanc id found for a path: 404 if none, 409 if several."""
    if not orthanc_ids:
        raise not_found(f"No such resource in Orthanc: {path.describe()}")
    distinct = sorted(set(orthanc_ids))
    if len(distinct) > 1:
        raise HttpError(409, f"Several Orthanc resources match {path.describe()}", distinct)
    return orthanc_ids[0]
