"""An in-memory Orthanc core for unit tests: real DICOM files indexed as Orthanc 1.10.1 indexes
them (same ids, main tags, listings, tags JSON), served through the REST calls the plugin makes
(`orthanc_dicomweb.orthanc.core.Core`), with attachments, metadata and the change log.

`tests/integration/test_fake_core_contract.py` runs the same checks on this fake and on a live
Orthanc, so the fake cannot drift from the core unseen. Tests that need an odd answer (a failure,
a core without some field) give canned answers per (method, uri), which win over the store, or
subclass; the SDK's extras (global properties, direct instance access, in-memory transcoding)
are mixins, since the plugin changes its way when a core offers them.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import pydicom
from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from orthanc_dicomweb.orthanc.core import CoreError, ListedFile
from tests.core_dicom import (
    METADATA_NAMES,
    instance_metadata,
    main_tags,
    orthanc_tags,
    raw_value,
)

LEVELS = ("Patient", "Study", "Series", "Instance")
PLURAL = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}
LEVEL_OF = {plural: level for level, plural in PLURAL.items()}
PARENT_OF = {"patient": "Patient", "study": "Study", "series": "Series"}  # /instances/{id}/study
IDENTIFIERS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


# What Orthanc 1.10.1 transcodes to, whatever the pixels (measured: JPEG baseline and JPEG-LS
# near-lossless depend on the pixels, JPEG 2000 and RLE cannot be written), and what it cannot
# decode without the GDCM plugin.
CORE_WRITES = {
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
}  # fmt: skip
CORE_CANNOT_READ = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"}
# The VRs /tools/find takes wildcards for (PS3.4 C.2.2.2.4; "" for tags it does not know).
WILDCARD_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT", ""}


def orthanc_id(*identifiers: str) -> str:
    """The core's id of a resource: SHA-1 of its identifiers and its parents', by groups of 8."""
    digest = hashlib.sha1("|".join(identifiers).encode()).hexdigest()
    return "-".join(digest[start : start + 8] for start in range(0, 40, 8))


def query_tag(key: str) -> int | None:
    """The tag a /tools/find key names, by keyword or as "gggg,eeee"."""
    if re.fullmatch(r"[0-9a-fA-F]{4},[0-9a-fA-F]{4}", key):
        return int(key.replace(",", ""), 16)
    return tag_for_keyword(key)


def dictionary_vr(key: str) -> str:
    """The VR of the tag a query key names ("" for a tag pydicom does not know)."""
    tag = query_tag(key)
    return str(dictionary_VR(tag)) if tag is not None and dictionary_has_tag(tag) else ""


def parse_dicom(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data), force=True)


@dataclass
class Resource:
    """One patient, study, series or instance of the index."""

    level: str
    id: str
    parent: str | None
    main_tags: dict[str, str]
    children: list[str] = field(default_factory=list)
    attachments: dict[str, bytes] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    file: bytes = b""
    file_uuid: str = ""

    @property
    def path(self) -> str:
        return f"/{PLURAL[self.level]}/{self.id}"


class FakeCore:
    """The core's REST API over an in-memory index of DICOM files; records every call."""

    def __init__(
        self,
        answers: dict[tuple[str, str], Any] | None = None,
        files: list[bytes] | tuple[bytes, ...] = (),
        config: dict[str, Any] | None = None,
    ) -> None:
        self.resources: dict[str, Resource] = {}
        self.changes: list[dict[str, Any]] = []
        self.answers: dict[tuple[str, str], Any] = dict(answers or {})
        self.calls: list[tuple[str, str, bytes | None]] = []
        self.config: dict[str, Any] = dict(config or {})
        self.properties: dict[int, str] = {}  # for GlobalPropertiesMixin
        self.listed: list[ListedFile | None] = []  # places given to DirectAccessMixin
        self.transcodable = True  # False: every transcoding fails, as the core's may
        self.transcodings = 0
        for data in files:
            self.store(data)

    # --- the Core protocol ------------------------------------------------------------------

    def get(self, uri: str) -> bytes:
        return self._answer("GET", uri, None)

    def post(self, uri: str, body: bytes | memoryview, after_plugins: bool = False) -> bytes:
        return self._answer("POST", uri, bytes(body))

    def put(self, uri: str, body: bytes) -> bytes:
        return self._answer("PUT", uri, body)

    def delete(self, uri: str) -> None:
        self._answer("DELETE", uri, None)

    def configuration(self) -> dict[str, Any]:
        return self.config

    # --- what tests read ----------------------------------------------------------------------

    def uris(self, method: str = "GET") -> list[str]:
        """The uris called with `method`, in order."""
        return [uri for called, uri, _ in self.calls if called == method]

    def tags_reads(self) -> int:
        """How many times an instance's tags were read."""
        return sum(uri.endswith("/tags") for uri in self.uris())

    def attachments(self) -> dict[str, bytes]:
        """Every attachment the plugin wrote, by uri (`/series/{id}/attachments/{number}`)."""
        return {
            f"{resource.path}/attachments/{name}": data
            for resource in self.resources.values()
            for name, data in resource.attachments.items()
        }

    def of_level(self, level: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.level == level]

    def id_of(self, uid: str) -> str:
        """The Orthanc id of the resource with this UID (or PatientID)."""
        return next(r.id for r in self.resources.values() if uid in self._identifiers(r))

    # --- storing and deleting -----------------------------------------------------------------

    def store(self, data: bytes) -> dict[str, Any]:
        """POST /instances: index the file (BadFileFormat when it is no DICOM instance)."""
        dataset = self._dataset_of(data)
        uids = [str(dataset.get(keyword, "")) for keyword in IDENTIFIERS]
        ids = [orthanc_id(*uids[: depth + 1]) for depth in range(4)]
        instance_id = ids[3]
        if instance_id in self.resources:
            if not self.config.get("OverwriteInstances", False):
                return self._stored(ids, "AlreadyStored")
            self.remove(instance_id)  # as the core: parents left empty go, and come back new
        created = []
        for depth, level in enumerate(LEVELS):
            parent = ids[depth - 1] if depth else None
            if ids[depth] not in self.resources:
                tags = main_tags(dataset, level)
                self.resources[ids[depth]] = Resource(level, ids[depth], parent, tags)
                if parent is not None:
                    self.resources[parent].children.append(ids[depth])
                created.append(ids[depth])
        for resource_id in reversed(created):  # the core logs the instance first
            self.log("New" + self.resources[resource_id].level, resource_id)
        instance = self.resources[instance_id]
        instance.file, instance.file_uuid = data, str(uuid.uuid4())
        instance.metadata.update(instance_metadata(dataset))
        return self._stored(ids, "Success")

    def _dataset_of(self, data: bytes) -> Dataset:
        try:
            dataset = parse_dicom(data)
        except (InvalidDicomError, ValueError, EOFError, OSError) as error:
            raise CoreError(15, "Bad file format", "/instances") from error
        if not all(dataset.get(keyword) for keyword in IDENTIFIERS[1:]):
            raise CoreError(15, "Bad file format", "/instances")
        return dataset

    def _stored(self, ids: list[str], status: str) -> dict[str, Any]:
        return {
            "ID": ids[3],
            "ParentPatient": ids[0],
            "ParentStudy": ids[1],
            "ParentSeries": ids[2],
            "Path": f"/instances/{ids[3]}",
            "Status": status,
        }

    def remove(self, resource_id: str) -> None:
        """DELETE /{level}/{id}: the resource, its descendants, and ancestors left empty."""
        resource = self.resources.pop(resource_id)
        for child in list(resource.children):
            self._drop(child)
        parent = self.resources.get(resource.parent or "")
        if parent is not None:
            parent.children.remove(resource_id)
            if not parent.children:
                self.remove(parent.id)

    def _drop(self, resource_id: str) -> None:
        for child in self.resources.pop(resource_id).children:
            self._drop(child)

    def log(self, change_type: str, resource_id: str = "") -> None:
        """Append a change to the log, as the core does (of a resource it may not hold)."""
        resource = self.resources.get(resource_id)
        self.changes.append(
            {
                "ChangeType": change_type,
                "Date": time.strftime("%Y%m%dT%H%M%S"),
                "ID": resource_id,
                "Path": resource.path if resource else "",
                "ResourceType": resource.level if resource else "",
                "Seq": len(self.changes) + 1,
            }
        )

    # --- the REST router ----------------------------------------------------------------------

    def _answer(self, method: str, uri: str, body: bytes | None) -> bytes:
        self.calls.append((method, uri, body))
        if (method, uri) in self.answers:
            answer = self.answers[(method, uri)]
            if callable(answer):
                answer = answer(body)
            return answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        answer = self.route(method, uri, body)
        if answer is None:
            raise CoreError(17, "Unknown resource", uri)
        return answer if isinstance(answer, bytes) else json.dumps(answer).encode()

    def route(self, method: str, uri: str, body: bytes | None) -> Any:
        """The core's answer (bytes or JSON), None for an unknown resource."""
        path, _, query = uri.partition("?")
        parts = path.strip("/").split("/")
        if method == "POST":
            return self._post(parts, body or b"")
        if parts[0] == "changes":
            return self._changes(query)
        if parts == ["statistics"]:
            return self._statistics()
        if parts == ["plugins"]:
            return []
        if parts[0] not in LEVEL_OF:
            return None
        if len(parts) == 1:
            return self._listing(LEVEL_OF[parts[0]], query)
        resource = self.resources.get(parts[1])
        if resource is None or resource.level != LEVEL_OF[parts[0]]:
            return None
        if method == "DELETE" and len(parts) == 2:
            self.remove(resource.id)
            return {}
        if parts[2:3] == ["attachments"]:
            return self._attachment(method, resource, parts[3:], body)
        return self._resource_get(resource, parts[2:], query) if method == "GET" else None

    def _post(self, parts: list[str], body: bytes) -> Any:
        if parts == ["instances"]:
            return self.store(body)
        if parts == ["tools", "lookup"]:
            return self._lookup(body.decode().strip())
        if parts == ["tools", "find"]:
            return self._find(json.loads(body))
        if len(parts) == 3 and parts[0] == "instances" and parts[2] == "modify":
            instance = self.resources.get(parts[1])
            syntax = json.loads(body).get("Transcode")
            return self.transcoded(instance.file, syntax) if instance and syntax else None
        return None

    def _resource_get(self, resource: Resource, rest: list[str], query: str) -> Any:
        if not rest:
            return self._expanded(resource)
        related = LEVEL_OF.get(rest[0]) or PARENT_OF.get(rest[0])
        if related and len(rest) == 1:
            return self._related(resource, related)
        if resource.level != "Instance":
            return None
        if rest == ["file"]:
            return resource.file
        if rest == ["tags"]:
            return orthanc_tags(parse_dicom(resource.file), short=query == "short")
        if rest[0] == "metadata":
            return _metadata(resource, rest[1:])
        if rest[0] == "content" and len(rest) % 2 == 0:
            return raw_value(parse_dicom(resource.file), rest[1:])
        return None

    def _related(self, resource: Resource, level: str) -> Any:
        """`/series/{id}/instances`, `/instances/{id}/series`...: expanded, a list downwards."""
        if LEVELS.index(level) < LEVELS.index(resource.level):
            ancestor = resource
            while ancestor.level != level:
                ancestor = self.resources[ancestor.parent or ""]
            return self._expanded(ancestor)
        return [self._expanded(r) for r in self._descendants(resource, level)]

    def _descendants(self, resource: Resource, level: str) -> Iterator[Resource]:
        if resource.level == level:
            yield resource
            return
        for child in resource.children:
            yield from self._descendants(self.resources[child], level)

    def _expanded(self, resource: Resource) -> dict[str, Any]:
        """`GET /{level}/{id}` (the fields that change with time left out)."""
        answer: dict[str, Any] = {
            "ID": resource.id,
            "Type": resource.level,
            "MainDicomTags": dict(resource.main_tags),
        }
        depth = LEVELS.index(resource.level)
        if resource.parent is not None:
            answer["Parent" + LEVELS[depth - 1]] = resource.parent
        if resource.level == "Instance":
            answer["FileSize"] = len(resource.file)
            answer["FileUuid"] = resource.file_uuid
            index = resource.metadata.get("IndexInSeries")
            answer["IndexInSeries"] = int(index) if index else None
        else:
            answer[PLURAL[LEVELS[depth + 1]].capitalize()] = list(resource.children)
        if resource.level == "Study":
            patient = self.resources[resource.parent or ""]
            answer["PatientMainDicomTags"] = dict(patient.main_tags)
        if resource.level == "Series":
            answer["ExpectedNumberOfInstances"] = None
            answer["Status"] = "Unknown"
        return answer

    def _attachment(self, method: str, resource: Resource, rest: list[str], body: Any) -> Any:
        if not rest:
            return [*(["dicom"] if resource.level == "Instance" else []), *resource.attachments]
        name = rest[0]
        if name == "dicom" and resource.level == "Instance":
            return _dicom_attachment(resource, rest[1:]) if method == "GET" else None
        if method == "PUT" and len(rest) == 1:
            resource.attachments[name] = bytes(body or b"")
            self.log("UpdatedAttachment", resource.id)
            return {}
        if name not in resource.attachments:
            return None
        if method == "DELETE" and len(rest) == 1:
            del resource.attachments[name]
            self.log("UpdatedAttachment", resource.id)
            return {}
        if method == "GET" and rest[1:] == ["data"]:
            return resource.attachments[name]
        return None

    def _listing(self, level: str, query: str) -> Any:
        resources = self.of_level(level)
        if "expand" in query.split("&"):
            return [self._expanded(r) for r in resources]
        return [r.id for r in resources]

    def _changes(self, query: str) -> Any:
        arguments = dict(part.partition("=")[::2] for part in query.split("&") if part)
        last = len(self.changes)
        if "last" in arguments:
            return {"Changes": self.changes[-1:], "Done": True, "Last": last}
        since, limit = int(arguments.get("since", 0)), int(arguments.get("limit", 100))
        page = [c for c in self.changes if c["Seq"] > since][:limit]
        done = not page or page[-1]["Seq"] == last
        return {"Changes": page, "Done": done, "Last": page[-1]["Seq"] if page else last}

    def _statistics(self) -> dict[str, Any]:
        counts = {
            f"Count{PLURAL[level].capitalize()}": len(self.of_level(level)) for level in LEVELS
        }
        size = sum(len(r.file) for r in self.of_level("Instance"))
        sizes = {"TotalDiskSize": str(size), "TotalUncompressedSize": str(size)}
        megabytes = {"TotalDiskSizeMB": size >> 20, "TotalUncompressedSizeMB": size >> 20}
        return counts | sizes | megabytes

    # --- /tools ---------------------------------------------------------------------------------

    def _identifiers(self, resource: Resource) -> set[str]:
        keyword = IDENTIFIERS[LEVELS.index(resource.level)]
        return {resource.main_tags.get(keyword, "")}

    def _lookup(self, uid: str) -> list[dict[str, str]]:
        return [
            {"ID": r.id, "Path": r.path, "Type": r.level}
            for r in self.resources.values()
            if uid in self._identifiers(r)
        ]

    def _find(self, request: dict[str, Any]) -> list[Any]:
        level = request["Level"]
        query: dict[str, str] = request.get("Query", {})
        for key, pattern in query.items():
            if re.search(r"[*?]", pattern) and dictionary_vr(key) not in WILDCARD_VRS:
                raise CoreError(3, "Parameter out of range", "/tools/find")  # as the core
        found = [r for r in self.of_level(level) if self._matches(r, query, request)]
        if level != "Instance":  # the core answers these by id, instances as it stored them
            found.sort(key=lambda resource: resource.id)
        found = found[int(request.get("Since", 0)) :]
        if request.get("Limit"):
            found = found[: int(request["Limit"])]
        return [self._expanded(r) if request.get("Expand") else r.id for r in found]

    def _matches(self, resource: Resource, query: dict[str, str], request: dict[str, Any]) -> bool:
        tags: dict[str, str] = {}
        node: Resource | None = resource
        while node is not None:
            tags |= node.main_tags
            node = self.resources.get(node.parent or "")
        case_sensitive = bool(request.get("CaseSensitive", True))
        return all(
            _value_matches(self._value(resource, tags, key), pattern, case_sensitive)
            for key, pattern in query.items()
        )

    def _value(self, resource: Resource, tags: dict[str, str], key: str) -> str | None:
        """A key's value: from the main tags, else (as the core) from an instance's file."""
        tag = query_tag(key)
        keyword = keyword_for_tag(tag) if tag is not None else key
        if keyword in tags:
            return tags[keyword]
        instance = next(self._descendants(resource, "Instance"), None)
        if instance is None or tag is None:
            return None
        tags_of_file = orthanc_tags(parse_dicom(instance.file), short=True)
        value = tags_of_file.get(f"{tag >> 16:04x},{tag & 0xFFFF:04x}")
        return value if isinstance(value, str) else None

    # --- transcoding, shared by /modify and the SDK's in-memory way ---------------------------

    def transcoded(self, dicom: bytes, syntax: str) -> bytes:
        """The file in `syntax` (see `relabelled`), where the core's DCMTK codecs could write
        it; else (or when transcoding is made to fail) the core's error."""
        stored = str(parse_dicom(dicom).file_meta.get("TransferSyntaxUID", ""))
        writable = syntax in CORE_WRITES or syntax == stored
        if not self.transcodable or not writable or stored in CORE_CANNOT_READ:
            raise CoreError(-1, "Internal error", syntax)
        self.transcodings += 1
        return relabelled(dicom, syntax)


def relabelled(dicom: bytes, syntax: str) -> bytes:
    """The file labelled in `syntax`, pixels wrapped in fragments when it compresses: no codec
    runs, which is good enough for services that only move the bytes."""
    dataset = parse_dicom(dicom)
    encapsulated = dataset.file_meta.TransferSyntaxUID.is_encapsulated
    if UID(syntax).is_encapsulated and not encapsulated and "PixelData" in dataset:
        dataset.PixelData = encapsulate([dataset.PixelData])
        dataset["PixelData"].VR = "OB"
        dataset["PixelData"].is_undefined_length = True
    dataset.file_meta.TransferSyntaxUID = UID(syntax)
    out = io.BytesIO()
    dataset.save_as(out)
    return out.getvalue()


class GlobalPropertiesMixin:
    """The database's global properties (`core.GlobalProperties`)."""

    properties: dict[int, str]

    def get_global_property(self, key: int) -> str:
        return self.properties.get(key, "")

    def set_global_property(self, key: int, value: str) -> None:
        self.properties[key] = value


class DirectAccessMixin:
    """The SDK's LookupStudy, LookupSeries, LookupInstance (`core.UidLookup`) and
    GetDicomForInstance (`core.DirectInstanceAccess`); the listed places given are recorded."""

    resources: dict[str, Resource]
    calls: list[tuple[str, str, bytes | None]]
    listed: list[ListedFile | None]

    def lookup_study(self, uid: str) -> str | None:
        return self._looked_up("Study", uid)

    def lookup_series(self, uid: str) -> str | None:
        return self._looked_up("Series", uid)

    def lookup_instance(self, sop_uid: str) -> str | None:
        return self._looked_up("Instance", sop_uid)

    def _looked_up(self, level: str, uid: str) -> str | None:
        """The one resource of the level with this UID; None if none or several, as the SDK."""
        self.calls.append(("SDK", f"Lookup{level} {uid}", None))
        keyword = IDENTIFIERS[LEVELS.index(level)]
        found = [r.id for r in self.resources.values() if r.level == level]
        found = [i for i in found if self.resources[i].main_tags.get(keyword) == uid]
        return found[0] if len(found) == 1 else None

    def instance_file(self, orthanc_id: str, listed: ListedFile | None = None) -> bytes:
        self.calls.append(("SDK", f"GetDicomForInstance {orthanc_id}", None))
        self.listed.append(listed)
        instance = self.resources.get(orthanc_id)
        if instance is None or instance.level != "Instance":
            raise CoreError(17, "Unknown resource", orthanc_id)
        return instance.file


class TranscodingMixin:
    """The SDK's TranscodeDicomInstance (`core.DicomTranscoding`)."""

    calls: list[tuple[str, str, bytes | None]]
    transcoded: Callable[[bytes, str], bytes]

    def transcode(self, dicom: bytes, syntax: str) -> bytes:
        self.calls.append(("SDK", f"transcode {syntax}", None))
        return self.transcoded(dicom, syntax)


class PropertiesCore(GlobalPropertiesMixin, FakeCore):
    """A core with global properties."""


class SdkCore(GlobalPropertiesMixin, DirectAccessMixin, TranscodingMixin, FakeCore):
    """A core with all the SDK's extras, as the runtime's `OrthancCore` has them."""


def _metadata(resource: Resource, rest: list[str]) -> Any:
    if not rest:
        return list(resource.metadata)
    if rest[0] not in resource.metadata and rest[0] not in METADATA_NAMES:
        raise CoreError(7, "Accessing an inexistent item", f"{resource.path}/metadata/{rest[0]}")
    if rest[0] not in resource.metadata:
        return None
    return resource.metadata[rest[0]].encode() if len(rest) == 1 else None


def _dicom_attachment(resource: Resource, rest: list[str]) -> Any:
    if rest == ["data"]:
        return resource.file
    if rest == ["info"]:
        md5 = hashlib.md5(resource.file).hexdigest()
        size = len(resource.file)
        return {
            "CompressedMD5": md5,
            "CompressedSize": size,
            "ContentType": 1,
            "UncompressedMD5": md5,
            "UncompressedSize": size,
            "Uuid": resource.file_uuid,
        }
    return None


def _value_matches(value: str | None, pattern: str, case_sensitive: bool) -> bool:
    """The core's /tools/find matching of one tag: lists, ranges, wildcards, equality (an
    absent tag matches only the empty, universal key)."""
    if pattern == "":
        return True
    if value is None:
        return False
    if not case_sensitive:
        value, pattern = value.upper(), pattern.upper()
    if "\\" in pattern:
        return any(_value_matches(value, item, True) for item in pattern.split("\\"))
    if re.fullmatch(r"\d*-\d*", pattern):
        low, high = pattern.split("-")
        return (not low or value >= low) and (not high or value <= high)
    if "*" in pattern or "?" in pattern:
        return fnmatchcase(value, pattern.replace("[", "[[]"))
    return value == pattern
