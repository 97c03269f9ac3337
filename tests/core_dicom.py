"""What Orthanc 1.10.1 says of a DICOM file, for the fake core (`tests/fake_core.py`): its main
tags per level, its metadata, and its tags in the `/instances/{id}/tags` format. Each rule here
was seen on a live core (`tests/integration/test_fake_core_contract.py` keeps checking them)."""

from __future__ import annotations

from typing import Any

from pydicom.datadict import dictionary_is_retired, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.valuerep import PersonName

# Orthanc 1.10.1's default main DICOM tags per level (what the index keeps, if the file has it).
MAIN_TAGS = {
    "Patient": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDs"),
    "Study": (
        "StudyDate", "StudyTime", "StudyID", "StudyDescription", "AccessionNumber",
        "StudyInstanceUID", "RequestedProcedureDescription", "InstitutionName",
        "RequestingPhysician", "ReferringPhysicianName",
    ),
    "Series": (
        "SeriesDate", "SeriesTime", "Modality", "Manufacturer", "StationName",
        "SeriesDescription", "BodyPartExamined", "SequenceName", "ProtocolName", "SeriesNumber",
        "CardiacNumberOfImages", "ImagesInAcquisition", "NumberOfTemporalPositions",
        "NumberOfSlices", "NumberOfTimeSlices", "SeriesInstanceUID", "ImageOrientationPatient",
        "SeriesType", "OperatorsName", "PerformedProcedureStepDescription",
        "AcquisitionDeviceProcessingDescription", "ContrastBolusAgent",
    ),
    "Instance": (
        "InstanceCreationDate", "InstanceCreationTime", "AcquisitionNumber", "ImageIndex",
        "InstanceNumber", "NumberOfFrames", "TemporalPositionIdentifier", "SOPInstanceUID",
        "ImagePositionPatient", "ImageComments", "ImageOrientationPatient",
    ),
}  # fmt: skip
# Metadata the core names (an absent one is an unknown resource, another name a bad item).
METADATA_NAMES = {
    "IndexInSeries", "ReceptionDate", "RemoteAET", "ModifiedFrom", "AnonymizedFrom",
    "LastUpdate", "Origin", "TransferSyntax", "SopClassUid", "RemoteIP", "CalledAET",
    "HttpUsername", "PixelDataOffset",
}  # fmt: skip
MAXIMUM_STRING_LENGTH = 256  # longer values are "TooLong" in /tags, as in the core
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
FLOAT_DIGITS = 17  # FL and FD values are printed as doubles, with 17 significant digits
PIXEL_DATA = 0x7FE00010


def main_tags(dataset: Dataset, level: str) -> dict[str, str]:
    tags = {}
    for keyword in MAIN_TAGS[level]:
        text = _text(dataset[keyword]) if keyword in dataset else None
        if text is not None and len(text) <= MAXIMUM_STRING_LENGTH:  # the core drops longer ones
            tags[keyword] = text
    return tags


def instance_metadata(dataset: Dataset) -> dict[str, str]:
    meta = dataset.get("file_meta", Dataset())
    numbers = [dataset[k].value for k in ("InstanceNumber", "ImageIndex") if k in dataset]
    return {
        "TransferSyntax": str(meta.get("TransferSyntaxUID", "") or _read_syntax(dataset)),
        "SopClassUid": str(dataset.get("SOPClassUID", "")),
        "Origin": "RestApi",
    } | ({"IndexInSeries": str(numbers[0] or "")} if numbers else {})


def _read_syntax(dataset: Dataset) -> str:
    """The syntax of a file without file meta information, as the core tells it."""
    if not dataset.is_little_endian:
        return "1.2.840.10008.1.2.2"
    return "1.2.840.10008.1.2" if dataset.is_implicit_VR else "1.2.840.10008.1.2.1"


def orthanc_tags(dataset: Dataset, short: bool = False) -> dict[str, Any]:
    """`GET /instances/{id}/tags` (or `?short`): every element up to the pixel data."""
    tags: dict[str, Any] = {}
    for element in dataset:
        key = f"{element.tag.group:04x},{element.tag.element:04x}"
        tags[key] = _short_value(element) if short else _full_value(element)
        creator = _private_creator(dataset, element)
        if creator and not short:
            tags[key]["PrivateCreator"] = creator
        if element.tag == PIXEL_DATA:
            break
    return tags


def _private_creator(dataset: Dataset, element: DataElement) -> str | None:
    """The creator of a private element's block (the core names it beside the value)."""
    tag = element.tag
    if not tag.is_private or tag.element < 0x1000:
        return None
    creator = dataset.get((tag.group, tag.element >> 8))
    return str(creator.value).strip() if creator is not None else None


def _name(element: DataElement) -> str:
    if element.tag.is_private_creator:
        return "PrivateCreator"
    if element.tag.element == 0:
        return "PrivateGroupLength" if element.tag.is_private else "GenericGroupLength"
    if element.keyword and dictionary_is_retired(element.tag):
        return "RETIRED_" + element.keyword
    return element.keyword or "Unknown Tag & Data"


def _full_value(element: DataElement) -> dict[str, Any]:
    name = _name(element)
    if element.VR == "SQ":
        items = [orthanc_tags(item) for item in element.value]
        return {"Name": name, "Type": "Sequence", "Value": items}
    text = _text(element)
    if text is None:
        return {"Name": name, "Type": "Null", "Value": None}
    if len(text) > MAXIMUM_STRING_LENGTH:
        return {"Name": name, "Type": "TooLong", "Value": None}
    return {"Name": name, "Type": "String", "Value": text}


def _short_value(element: DataElement) -> Any:
    if element.VR == "SQ":
        return [orthanc_tags(item, short=True) for item in element.value]
    text = _text(element)
    return None if text is None or len(text) > MAXIMUM_STRING_LENGTH else text


def _text(element: DataElement) -> str | None:
    """An element's value as the core prints it: text as read, numbers in decimal, values
    joined by backslashes; None for binary values."""
    if element.VR in BINARY_VRS or element.tag == PIXEL_DATA:
        return None
    value = element.value
    values = list(value) if isinstance(value, list | tuple) or _is_multi(value) else [value]
    if value is None or value == "" or value == b"":
        return ""
    if element.VR in ("FL", "FD"):
        return "\\".join(f"{float(v):.{FLOAT_DIGITS}g}" for v in values)
    if element.VR == "AT":  # the core prints the first tag only
        return f"{int(values[0]) >> 16:04x},{int(values[0]) & 0xFFFF:04x}"
    return "\\".join(_as_text(v) for v in values)


def _is_multi(value: Any) -> bool:
    return type(value).__name__ == "MultiValue"


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, PersonName):
        return str(value)
    original = getattr(value, "original_string", None)
    return str(original if original is not None else value)


def raw_value(dataset: Dataset, path: list[str]) -> bytes | list[str] | None:
    """`GET /instances/{id}/content/gggg-eeee[/index/gggg-eeee...]`: a value's bytes as stored
    (the indexes of its items, for a sequence)."""
    node: Any = dataset
    for step, key in enumerate(path):
        if step % 2:  # an item of the sequence reached so far
            if not key.isdigit() or int(key) >= len(node):
                return None
            node = node[int(key)]
            continue
        tag = Tag(int(key.replace("-", ""), 16))
        if tag not in node:
            return None
        raw = node.get_item(tag)  # as read, before pydicom converts it
        if step == len(path) - 1 and _raw_vr(raw) != "SQ":
            return raw.value if isinstance(raw.value, bytes) else None
        node = node[tag].value
    if isinstance(node, Sequence):
        return [str(index) for index in range(len(node))]
    return node if isinstance(node, bytes) else None


def _raw_vr(element: Any) -> str:
    """The VR of an element as read (from the dictionary, in implicit VR files)."""
    if element.VR:
        return str(element.VR)
    try:
        return str(dictionary_VR(element.tag))
    except KeyError:
        return "UN"
