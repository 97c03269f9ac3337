"""DICOM UIDs in request paths, and finding the Orthanc resources they name."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .core import Core, post_json
from .errors import HttpError, bad_request, not_found

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def validate_uid(uid: str, what: str = "UID") -> str:
    """A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1)."""
    if not uid or len(uid) > 64 or not _UID.match(uid):
        raise bad_request(f"Malformed {what}: {uid!r}")
    return uid


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


def find_orthanc_ids(core: Core, path: ResourcePath) -> list[str]:
    """Orthanc ids of the resources at the path's level (the parent UIDs must match too)."""
    request = {"Level": path.level, "Query": _query(path), "Expand": False}
    return post_json(core, "/tools/find", request)


def locate(core: Core, path: ResourcePath) -> str:
    """The Orthanc id of the resource the path names; 404 when it is unknown."""
    found = find_orthanc_ids(core, path)
    if not found:
        raise not_found(f"No such resource in Orthanc: {path.describe()}")
    if len(found) > 1:
        raise HttpError(409, f"Several Orthanc resources match {path.describe()}", found)
    return found[0]
