"""DICOM instances as STOW-RS receives them: read their identity, or build them from metadata.

An `application/dicom` part is a whole Part 10 file: only its identifying attributes are read,
from a view on the request, stopping at the Series Instance UID (the core parses the file
anyway when it stores it). A DICOM JSON (or XML) metadata part describes datasets whose binary
values are `BulkDataURI`s naming other parts of the request by Content-Location (or `cid:`
Content-ID): those are assembled here into Part 10 files with pydicom.
"""

from __future__ import annotations

import hashlib
import io
import logging
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset, dcmwrite
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
)

from ..errors import HttpError
from ..http.bounded import MAX_SEQUENCE_DEPTH, loads_json
from ..http.multipart import Part
from ..http.negotiation import parse_media_type
from .character_sets import decode_text
from .scan import InflatedTooLarge, NotDicom, dataset_start, nesting_exceeds, scan, uid_text
from .xml_model import from_native_xml

log = logging.getLogger(__name__)

PATIENT_ID = 0x00100020
STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
SPECIFIC_CHARACTER_SET = 0x00080005
PIXEL_DATA = 0x7FE00010
IDENTITY_TAGS: tuple[int, ...] = (SPECIFIC_CHARACTER_SET, SOP_CLASS_UID, SOP_INSTANCE_UID)
IDENTITY_TAGS += (PATIENT_ID, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID)
NATIVE_MEDIA_TYPE = "application/octet-stream"
# The transfer syntax of a compressed frame when its part does not name one (PS3.18 8.7.3.5.2).
DEFAULT_TRANSFER_SYNTAXES = {
    "image/jpeg": "1.2.840.10008.1.2.4.50",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/dicom-rle": "1.2.840.10008.1.2.5",
    "video/mpeg": "1.2.840.10008.1.2.4.100",
    "video/mp4": "1.2.840.10008.1.2.4.102",
}


class InvalidInstance(ValueError):
    """A part that cannot become a stored instance (UIDs given when they could be read)."""

    def __init__(
        self, message: str, sop_class: str | None = None, sop_instance: str | None = None
    ) -> None:
        super().__init__(message)
        self.sop_class = sop_class
        self.sop_instance = sop_instance


class UnreadableInstance(InvalidInstance):
    """Not DICOM, or DICOM that cannot be understood (truncated, bad JSON, missing bulk data)."""


class NonConformantInstance(InvalidInstance):
    """Readable, but without the identifying attributes every stored instance needs."""


@dataclass(frozen=True)
class InstanceIdentity:
    """The attributes that place an instance in Orthanc's patient/study/series hierarchy."""

    sop_class: str
    sop_instance: str
    study: str
    series: str
    patient_id: str = ""

    def orthanc_id(self) -> str:
        """The id the core gives this instance (SHA-1 of the four identifiers)."""
        key = "|".join((self.patient_id, self.study, self.series, self.sop_instance))
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
        return "-".join(digest[i : i + 8] for i in range(0, 40, 8))

    def same_uids(self, other: InstanceIdentity) -> bool:
        mine = (self.sop_class, self.sop_instance, self.study, self.series)
        return mine == (other.sop_class, other.sop_instance, other.study, other.series)


def read_identity(data: memoryview) -> InstanceIdentity:
    """The identity of a Part 10 file, reading no further than the Series Instance UID.

    A scan of element headers with `struct` (values skipped, sequences walked): ten times
    cheaper than pydicom here, which matters at hundreds of instances per second.
    """
    try:
        meta, data, position, encoding = dataset_start(data)
        found, stop = scan(data, position, encoding, IDENTITY_TAGS, SERIES_INSTANCE_UID)
    except (NotDicom, InflatedTooLarge) as error:
        raise UnreadableInstance(str(error)) from None
    except (struct.error, ValueError, zlib.error) as error:
        raise UnreadableInstance(f"Unreadable or truncated DICOM header: {error}") from None
    try:
        identity = _identity({tag: _decode(value, found) for tag, value in found.items()})
    except NonConformantInstance as error:
        if stop + 8 > len(data):  # the file ends before the identifiers: cut off, not wrong
            raise UnreadableInstance(
                f"Truncated DICOM file ({error})", error.sop_class, error.sop_instance
            ) from None
        raise
    meta_class, meta_instance = uid_text(meta.get(0x00020002)), uid_text(meta.get(0x00020003))
    if (meta_class and meta_class != identity.sop_class) or (
        meta_instance and meta_instance != identity.sop_instance
    ):
        # The core stores such files (the dataset wins), and real archives hold many.
        log.info("File meta and dataset disagree on the SOP UIDs of %s", identity.sop_instance)
    return identity


def check_nesting(data: memoryview, limit: int = MAX_SEQUENCE_DEPTH) -> None:
    """UnreadableInstance when the sequences of a Part 10 file nest deeper than `limit`.

    The core's DICOM parser recurses once per level on its HTTP thread's stack: about fifty
    nested sequences in a 5 KB file killed the whole Orthanc. A file cut off is left for the
    core to refuse (it reads no further than the walk did).
    """
    try:
        _, data, position, encoding = dataset_start(data)
        too_deep = nesting_exceeds(data, position, encoding, limit)
    except (NotDicom, InflatedTooLarge) as error:
        raise UnreadableInstance(str(error)) from None
    except (struct.error, ValueError, zlib.error):
        return
    if too_deep:
        raise UnreadableInstance(f"Sequences nested deeper than {limit} levels (the limit)")


def _decode(value: memoryview, found: Mapping[int, memoryview]) -> str:
    """A text value as the core reads it: through the charset, trailing padding removed."""
    charset = found.get(SPECIFIC_CHARACTER_SET)
    return decode_text(bytes(value), uid_text(charset) or None).rstrip(" \0")


def identity_of(dataset: Dataset) -> InstanceIdentity:
    """The identity of a dataset; NonConformantInstance if a required UID is missing."""
    return _identity({tag: _text(dataset, tag) for tag in IDENTITY_TAGS})


def _identity(values: Mapping[int, str]) -> InstanceIdentity:
    sop_class, sop_instance = values.get(SOP_CLASS_UID, ""), values.get(SOP_INSTANCE_UID, "")
    missing = [
        name
        for name, tag in (
            ("SOPClassUID", SOP_CLASS_UID),
            ("SOPInstanceUID", SOP_INSTANCE_UID),
            ("StudyInstanceUID", STUDY_INSTANCE_UID),
            ("SeriesInstanceUID", SERIES_INSTANCE_UID),
        )
        if not values.get(tag)
    ]
    if missing:
        raise NonConformantInstance(
            f"Missing {', '.join(missing)}", sop_class or None, sop_instance or None
        )
    return InstanceIdentity(
        sop_class,
        sop_instance,
        values[STUDY_INSTANCE_UID],
        values[SERIES_INSTANCE_UID],
        values.get(PATIENT_ID, ""),
    )


def _text(dataset: Dataset, tag: int) -> str:
    element = dataset.get(tag)
    value = element.value if element is not None else None
    return str(value).rstrip(" \0") if value not in (None, "") else ""


# --- Assembling instances from metadata and bulk data ---------------------------------------


def bulk_data_uris(part: Part) -> list[str]:
    """The URIs a BulkDataURI may name a part by: its Content-Location, `cid:` + Content-ID."""
    uris = [part.content_location.strip()] if part.content_location else []
    content_id = part.headers.get("content-id")
    if content_id:
        uris.append("cid:" + content_id.strip().strip("<>"))
    return uris


def bulk_data_parts(parts: Iterable[Part]) -> dict[str, Part]:
    """Parts by every URI that names them."""
    return {uri: part for part in parts for uri in bulk_data_uris(part)}


def read_json_metadata(data: memoryview) -> list[dict[str, Any]]:
    """The datasets of a DICOM JSON part: an array of datasets, or a single one."""
    try:
        value = loads_json(data, "The DICOM JSON metadata part")
    except ValueError as error:
        raise UnreadableInstance(f"Metadata part is not JSON: {error}") from None
    datasets = value if isinstance(value, list) else [value]
    if not datasets or not all(isinstance(dataset, dict) for dataset in datasets):
        raise UnreadableInstance("Metadata part is not a DICOM JSON dataset or array of them")
    return datasets


def read_xml_metadata(data: memoryview) -> list[dict[str, Any]]:
    """The dataset of a DICOM XML part (PS3.19 Native DICOM Model), in the JSON model."""
    try:
        return [from_native_xml(data.tobytes())]
    except HttpError as error:
        raise UnreadableInstance(f"Invalid XML metadata part: {error.message}") from None


def assemble(
    metadata: Mapping[str, Any], bulk_data: Mapping[str, Part]
) -> tuple[InstanceIdentity, bytes]:
    """A Part 10 file from one DICOM JSON dataset and the bulk data parts it references."""
    sop_class, sop_instance = _json_uid(metadata, "00080016"), _json_uid(metadata, "00080018")
    resolver = _BulkDataResolver(bulk_data, sop_class, sop_instance)
    try:
        dataset = Dataset.from_json(dict(metadata), resolver)
    except InvalidInstance:
        raise
    except Exception as error:  # from_json raises many types on invalid input
        raise UnreadableInstance(
            f"Invalid DICOM JSON dataset: {error}", sop_class, sop_instance
        ) from None
    identity = identity_of(dataset)
    transfer_syntax = _move_file_meta(dataset).get("TransferSyntaxUID")
    if resolver.encapsulated_syntax:
        dataset[PIXEL_DATA].VR = "OB"
        transfer_syntax = resolver.encapsulated_syntax
    return identity, _to_part10(dataset, identity, UID(transfer_syntax or ExplicitVRLittleEndian))


def _json_uid(metadata: Mapping[str, Any], key: str) -> str | None:
    attribute = metadata.get(key)
    values = attribute.get("Value") if isinstance(attribute, Mapping) else None
    first = values[0] if isinstance(values, list) and values else None
    return first if isinstance(first, str) else None


class _BulkDataResolver:
    """pydicom's BulkDataURI handler: the bytes of the referenced part, frames encapsulated."""

    def __init__(
        self, parts: Mapping[str, Part], sop_class: str | None, sop_instance: str | None
    ) -> None:
        self.parts = parts
        self.uids = (sop_class, sop_instance)
        self.encapsulated_syntax: str | None = None

    def __call__(self, tag: str, vr: str, uri: str) -> bytes:
        part = self.parts.get(uri.strip())
        if part is None:
            raise UnreadableInstance(f"BulkDataURI {uri!r} references no part", *self.uids)
        media = _part_media_type(part)
        if int(tag, 16) != PIXEL_DATA or media is None or media.essence == NATIVE_MEDIA_TYPE:
            return part.body.tobytes()
        syntax = media.param("transfer-syntax") or DEFAULT_TRANSFER_SYNTAXES.get(media.essence)
        if not syntax:
            raise UnreadableInstance(f"Pixel data of unknown media type {media}", *self.uids)
        self.encapsulated_syntax = syntax
        return encapsulate([part.body.tobytes()])


def _part_media_type(part: Part) -> Any:
    if not part.content_type:
        return None
    try:
        return parse_media_type(part.content_type)
    except HttpError:
        return None


def _move_file_meta(dataset: Dataset) -> FileMetaDataset:
    """Group 0002 sent in the metadata belongs in the file meta, not in the dataset."""
    meta = FileMetaDataset()
    for element in list(dataset.group_dataset(0x0002)):
        meta[element.tag] = element
        del dataset[element.tag]
    return meta


def _to_part10(dataset: Dataset, identity: InstanceIdentity, transfer_syntax: UID) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(identity.sop_class)
    meta.MediaStorageSOPInstanceUID = UID(identity.sop_instance)
    meta.TransferSyntaxUID = transfer_syntax
    dataset.file_meta = meta
    buffer = io.BytesIO()
    try:
        dcmwrite(buffer, dataset, enforce_file_format=True)
    except Exception as error:  # a value pydicom cannot encode (wrong type for its VR...)
        raise UnreadableInstance(
            f"Cannot encode the dataset: {error}", identity.sop_class, identity.sop_instance
        ) from None
    return buffer.getvalue()


__all__ = [
    "InstanceIdentity",
    "InvalidInstance",
    "NonConformantInstance",
    "UnreadableInstance",
    "assemble",
    "bulk_data_parts",
    "bulk_data_uris",
    "check_nesting",
    "identity_of",
    "read_identity",
    "read_json_metadata",
    "read_xml_metadata",
]
