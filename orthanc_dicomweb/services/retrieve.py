"""WADO-RS "Retrieve Study", "Retrieve Series" and "Retrieve Instance" (PS3.18 10.4).

Instances are sent as `multipart/related; type="application/dicom"`, one part per instance,
streamed: only one instance is in memory at a time. The instances are listed with their files
(`/series/{id}/instances`: storage uuid and size), so that a file in the core's storage
directory is read with no core call per part; any other costs one (the SDK's
GetDicomForInstance, or `/instances/{id}/file`). The stored transfer syntax is read from the
file's meta header, and the core transcodes (the SDK's TranscodeDicomInstance, or
`/instances/{id}/modify`) only when the client asked for another syntax. An `Accept` that
allows no DICOM part is refused with 400 (`negotiation.ACCEPT_REFUSED`); a syntax the core
cannot write, with 406.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator

from ..config import Configuration
from ..dicom import scan
from ..dicom.transfer_syntax import (
    DICOM,
    TRANSCODABLE,
    InstanceTarget,
    instance_targets,
    syntax_of_file,
)
from ..errors import HttpError, not_found
from ..http import negotiation
from ..http.web import MultipartResponse, Request
from ..orthanc.core import Core, ListedFile, get_json, post_json
from ..orthanc.request_scope import indexed_instance, once
from ..orthanc.resources import ResourcePath, locate_resource
from ..orthanc.stored_instances import InstanceReader
from ..orthanc.transcoding import first_acceptable, transcode

log = logging.getLogger(__name__)

STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E


def instance_files(core: Core, path: ResourcePath) -> list[ListedFile]:
    """The instances below the path with their files, in the core's order; 404 if none.

    The parent UIDs are matched too, so a series UID found in two studies is looked up in the
    study the URL names. A series-level `/tools/find` plus `/series/{id}/instances` costs ~6 ms
    for 300 instances (where an instance-level `/tools/find` costs ~100 ms), and saves a call
    for each file's place: 300 of them took ~9 ms between the parts of a retrieve.
    """
    if path.instance:
        return [ListedFile.of(locate_resource(core, path))]
    query = {"StudyInstanceUID": path.study}
    if path.series:
        query["SeriesInstanceUID"] = path.series
    found = post_json(core, "/tools/find", {"Level": path.level, "Query": query})
    series = found if path.series else _series_of_studies(core, found)
    listed = [
        ListedFile.of(instance)
        for series_id in series
        for instance in get_json(core, f"/series/{series_id}/instances")
    ]
    if not listed:
        raise not_found(f"No such resource in Orthanc: {path.describe()}")
    return listed


def names_parents(dicom: bytes, path: ResourcePath) -> bool:
    """Whether a stored file's Study and Series Instance UIDs are the path's (False when its
    header cannot be read); ~20 us, where finding the path's instance costs the core ~0.5 ms."""
    try:
        _, data, position, encoding = scan.dataset_start(memoryview(dicom))
        wanted = (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID)
        values, _ = scan.scan(data, position, encoding, wanted, SERIES_INSTANCE_UID)
    except (ValueError, struct.error):
        return False
    uids = (scan.uid_text(values.get(tag)) for tag in (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID))
    return tuple(uids) == (path.study, path.series)


def _series_of_studies(core: Core, studies: list[str]) -> list[str]:
    return [s for study_id in studies for s in get_json(core, f"/studies/{study_id}")["Series"]]


def accepted_targets(accept: str | None) -> list[InstanceTarget]:
    """What `Accept` allows for whole instances, best first; 400 if nothing."""
    try:
        return instance_targets(accept)
    except HttpError as error:
        raise negotiation.refuse_accept(error.message) from None


class RetrieveInstances:
    """Retrieve Study / Series / Instance: DICOM files in a multipart stream."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.core = core
        self.instances = InstanceReader(core)

    def retrieve(self, request: Request) -> MultipartResponse:
        """The handler of the three routes: the path's depth decides the level."""
        path = ResourcePath.from_groups(request.groups)
        targets = accepted_targets(request.header("accept"))
        return MultipartResponse(DICOM, self.files(path, targets))

    def files(self, path: ResourcePath, targets: list[InstanceTarget]) -> Iterator[bytes]:
        """The files below the path in the best target that works, one at a time (also for
        the ZIP form, `zip_retrieve.py`)."""
        listed = self._named_instance(path) if path.instance else instance_files(self.core, path)
        first, target = self._first_part(targets, listed)
        return self._stream(first, listed[1:], target)

    def _named_instance(self, path: ResourcePath) -> list[ListedFile]:
        """The instance the path names: the one the UID index names (looked up once per
        request, for the ETag too: `request_scope`) when its file names the path's study and
        series, else the one the path's three UIDs find (a duplicate SOP UID; 404 if none)."""
        indexed = indexed_instance(self.instances, path.instance or "")
        if indexed is not None:
            listed = ListedFile.of(indexed)
            if names_parents(self._file(listed), path):
                return [listed]
        return instance_files(self.core, path)

    def _file(self, file: ListedFile) -> bytes:
        """The stored file; read once per request (the parents' check, then the first part)."""
        return once(("file", file.orthanc_id), lambda: self.instances.file(file.orthanc_id, file))

    def _first_part(
        self, targets: list[InstanceTarget], listed: list[ListedFile]
    ) -> tuple[bytes, InstanceTarget]:
        """The first instance in the best target syntax that works, made before answering so
        that its errors still get a status."""
        producible = (target for target in targets if self._can_produce(target, listed))
        return first_acceptable(
            producible, lambda target: (self._instance(listed[0], target), target)
        )

    def _stream(
        self, first: bytes, listed: list[ListedFile], target: InstanceTarget
    ) -> Iterator[bytes]:
        yield first
        for file in listed:
            try:
                yield self._instance(file, target)
            except HttpError as error:
                # The status is sent already: stop, leaving the multipart unclosed.
                log.error("Retrieve stopped at instance %s: %s", file.orthanc_id, error.message)
                raise

    def _instance(self, file: ListedFile, target: InstanceTarget) -> bytes:
        dicom = self._file(file)
        if target.syntax is not None and target.needs_transcoding(syntax_of_file(dicom)):
            return transcode(self.core, file.orthanc_id, target.syntax, dicom)
        return dicom

    def _can_produce(self, target: InstanceTarget, listed: list[ListedFile]) -> bool:
        """False for a syntax the core cannot write, unless every instance is stored in it."""
        if target.syntax is None or target.syntax in TRANSCODABLE:
            return True
        return all(self._stored_syntax(file.orthanc_id) == target.syntax for file in listed)

    def _stored_syntax(self, instance_id: str) -> str:
        return self.core.get(f"/instances/{instance_id}/metadata/TransferSyntax").decode()
