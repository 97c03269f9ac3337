"""The seam to the Orthanc core, stated as a Protocol so services can be tested with a fake."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson

from ..errors import HttpError

log = logging.getLogger(__name__)

# Orthanc error codes (OrthancPluginErrorCode) mapped to the HTTP status they deserve.
_CORE_ERROR_STATUS = {
    3: 400,  # ParameterOutOfRange
    5: 400,  # BadParameterType
    7: 404,  # InexistentItem
    8: 400,  # BadRequest
    12: 400,  # UriSyntax
    15: 400,  # BadFileFormat
    17: 404,  # UnknownResource
    19: 507,  # FullStorage
    21: 404,  # InexistentTag
    22: 403,  # ReadOnly
    23: 400,  # IncompatibleImageFormat
    24: 400,  # IncompatibleImageSize
    27: 400,  # UnknownDicomTag
    28: 400,  # BadJson
    29: 401,  # Unauthorized
    33: 400,  # EmptyRequest
    34: 406,  # NotAcceptable
    38: 400,  # BadGeometry
    41: 416,  # BadRange
}


class CoreError(HttpError):
    """A failed call to the Orthanc core, with the core's own error code."""

    def __init__(self, code: int, message: str, uri: str) -> None:
        super().__init__(
            _CORE_ERROR_STATUS.get(code, 500),
            f"Orthanc core: {message}",
            {"OrthancError": code, "Uri": uri},
        )
        self.code = code


class Core(Protocol):
    """What the services need from Orthanc: its REST API (bytes in, bytes out)."""

    def get(self, uri: str) -> bytes: ...

    def post(self, uri: str, body: bytes | memoryview, after_plugins: bool = False) -> bytes: ...

    def put(self, uri: str, body: bytes) -> bytes: ...

    def delete(self, uri: str) -> None: ...

    def configuration(self) -> dict[str, Any]: ...


@runtime_checkable
class DirectInstanceAccess(Protocol):
    """A core reaching instances past the REST router (the SDK's LookupInstance: ~0.2 ms
    against ~0.8 ms for POST /tools/lookup; GetDicomForInstance: ~0.1 ms less than GET /file)."""

    def lookup_instance(self, sop_uid: str) -> str | None: ...

    def instance_file(self, orthanc_id: str, listed: ListedFile | None = None) -> bytes:
        """The stored file; `listed` (when the caller has it) saves a call for its place."""
        ...


@runtime_checkable
class UidLookup(Protocol):
    """A core finding a resource by its own UID in its index, past the REST router (the SDK's
    LookupStudy / LookupSeries / LookupInstance: 16-19 ms at 50,000 studies, where
    `/tools/find` by UIDs costs ~42 ms whatever it asks). The parents are not checked; None
    when the UID is unknown or names several resources of the level (Orthanc cannot tell)."""

    def lookup_study(self, uid: str) -> str | None: ...

    def lookup_series(self, uid: str) -> str | None: ...

    def lookup_instance(self, sop_uid: str) -> str | None: ...


@dataclass(frozen=True)
class ListedFile:
    """An instance with its DICOM file, as the core's listings give it (`/series/{id}/instances`,
    `/tools/find` with `Expand`): the storage uuid and the uncompressed size."""

    orthanc_id: str
    uuid: str
    size: int

    @classmethod
    def of(cls, instance: Mapping[str, Any]) -> ListedFile:
        """From an expanded instance (a core without `FileUuid` gives a uuid the storage
        directory never holds, so its file is read through the core)."""
        return cls(
            str(instance["ID"]),
            str(instance.get("FileUuid", "")),
            int(instance.get("FileSize", -1)),
        )


@runtime_checkable
class DicomTranscoding(Protocol):
    """A core transcoding a DICOM file in memory (the SDK's TranscodeDicomInstance: ~3.4 ms
    for a 512x512 RLE CT slice, against ~5.8 ms for POST /instances/{id}/modify, which runs the
    whole modification pipeline)."""

    def transcode(self, dicom: bytes, syntax: str) -> bytes:
        """The same instance, every attribute and UID kept, in transfer syntax `syntax`."""
        ...


@runtime_checkable
class ConcurrentStores(Protocol):
    """A core able to store several instances at once, each from its own thread (plugin 4.0
    holds the GIL during SDK calls: the runtime sends such stores over HTTP loopback)."""

    def concurrent_stores(self) -> int:
        """How many `post("/instances", ..., after_plugins=True)` may overlap (1: serial)."""
        ...


@runtime_checkable
class GlobalProperties(Protocol):
    """Global properties of the Orthanc database (plugins use keys >= 1024)."""

    def get_global_property(self, key: int) -> str: ...

    def set_global_property(self, key: int, value: str) -> None: ...


def loads(data: bytes) -> Any:
    """Parse the core's JSON (orjson: 2-3x faster than `json` on large answers)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # what orjson refuses but JSON allows: integers beyond 64 bits


def get_json(core: Core, uri: str) -> Any:
    return loads(core.get(uri))


def get_if_exists(core: Core, uri: str) -> bytes | None:
    """The core's answer, or None when it does not know the resource (404)."""
    try:
        return core.get(uri)
    except CoreError as error:
        if error.status == 404:
            return None
        raise


def post_json(core: Core, uri: str, value: Any, after_plugins: bool = False) -> Any:
    answer = core.post(uri, json.dumps(value).encode(), after_plugins)
    return loads(answer) if answer else None


# Attachments with numbers >= 1024 are the plugin's own data, kept with each resource.


def read_attachment(core: Core, resource: str, number: int) -> bytes | None:
    """An attachment of a resource (`/series/{id}`), None if it has none."""
    return get_if_exists(core, f"{resource}/attachments/{number}/data")


def delete_attachment(core: Core, resource: str, number: int) -> None:
    """Remove an attachment of a resource, if it has it."""
    try:
        core.delete(f"{resource}/attachments/{number}")
    except CoreError as error:
        if error.status != 404:
            raise


def write_attachment(core: Core, resource: str, number: int, data: bytes) -> bool:
    """Store an attachment; False (logged) when the core refuses it."""
    try:
        core.put(f"{resource}/attachments/{number}", data)
    except CoreError as error:
        # ReadOnly mode, or the resource was deleted meanwhile: the answer is still right.
        log.warning("attachment %d of %s not stored: %s", number, resource, error.message)
        return False
    return True
