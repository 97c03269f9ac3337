"""The Native DICOM Model (PS3.19 Annex A) to and from the DICOM JSON Model of `dicom_json`.

The JSON model is the pivot: services build JSON datasets, and answer XML by converting them
here; STOW-RS XML metadata is read back into JSON. Only the standard library is used.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from ..errors import bad_request
from ..http.bounded import check_xml
from .tags import keyword_of, tag_key, vr_of
from .values import PERSON_NAME_GROUPS, convert_value

NAMESPACE = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
NAME_COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")

# Characters XML 1.0 cannot carry at all, even escaped; a value holding one would make the
# whole document unreadable, so they are dropped.
_ILLEGAL_XML_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_HEX_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")


# --- JSON -> XML ------------------------------------------------------------------------------


def to_native_xml(dataset: Mapping[str, Any]) -> bytes:
    """One DICOM JSON dataset as a PS3.19 `NativeDicomModel` document, UTF-8."""
    root = ET.Element("NativeDicomModel", {"xmlns": NAMESPACE})
    _append_attributes(root, dataset)
    # Children have no prefix: the default namespace set on the root applies to them all.
    text = ET.tostring(root, encoding="unicode")
    # A raw CR in text would be read back as LF (XML end-of-line handling); ElementTree only
    # escapes it inside attributes, so every CR left is in text and becomes a reference.
    return XML_DECLARATION + text.replace("\r", "&#13;").encode("utf-8")


def _append_attributes(parent: ET.Element, dataset: Mapping[str, Any]) -> None:
    for key in sorted(dataset, key=lambda text: int(text, 16)):
        parent.append(_attribute_element(int(key, 16), dataset[key]))


def _attribute_element(tag: int, attribute: Mapping[str, Any]) -> ET.Element:
    vr = attribute.get("vr") or vr_of(tag)
    xml_attributes = {"tag": tag_key(tag), "vr": vr}
    keyword = keyword_of(tag)
    if keyword:
        xml_attributes["keyword"] = keyword
    node = ET.Element("DicomAttribute", xml_attributes)
    if "BulkDataURI" in attribute:
        ET.SubElement(node, "BulkData", {"uri": _xml_text(attribute["BulkDataURI"])})
    elif "InlineBinary" in attribute:
        ET.SubElement(node, "InlineBinary").text = _xml_text(attribute["InlineBinary"])
    for number, value in enumerate(attribute.get("Value") or (), start=1):
        _append_value(node, vr, number, value)
    return node


def _append_value(node: ET.Element, vr: str, number: int, value: Any) -> None:
    """One value; an empty (null) one is left out, the numbers of the others keep its place."""
    if value is None:
        return
    if vr == "SQ":
        item = ET.SubElement(node, "Item", {"number": str(number)})
        _append_attributes(item, value)
    elif vr == "PN":
        _append_person_name(node, number, value)
    else:
        ET.SubElement(node, "Value", {"number": str(number)}).text = _value_text(value)


def _append_person_name(node: ET.Element, number: int, value: Any) -> None:
    name = ET.SubElement(node, "PersonName", {"number": str(number)})
    groups = value if isinstance(value, Mapping) else {"Alphabetic": str(value)}
    for group in PERSON_NAME_GROUPS:
        text = groups.get(group)
        if not text:
            continue
        group_node = ET.SubElement(name, group)
        for component, part in zip(NAME_COMPONENTS, text.split("^"), strict=False):
            if part:
                ET.SubElement(group_node, component).text = _xml_text(part)


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same double
    return _xml_text(str(value))


def _xml_text(text: str) -> str:
    return _ILLEGAL_XML_CHARACTERS.sub("", text)


# --- XML -> JSON ------------------------------------------------------------------------------


def from_native_xml(xml: bytes) -> dict[str, Any]:
    """A PS3.19 document (with or without the namespace) as a DICOM JSON dataset.

    HttpError 400 when it is not well-formed or not a `NativeDicomModel`. Document type
    declarations are refused: they serve no purpose here and are the way to entity bombs.
    """
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise bad_request("XML metadata must not contain a document type declaration")
    check_xml(xml, "The XML metadata")  # the conversion below recurses once per level
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as error:
        raise bad_request(f"Malformed XML metadata: {error}") from None
    if _local_name(root.tag) != "NativeDicomModel":
        raise bad_request(f"Expected a NativeDicomModel document, got {_local_name(root.tag)}")
    return _read_dataset(root)


def _read_dataset(parent: ET.Element) -> dict[str, Any]:
    attributes: list[tuple[int, dict[str, Any]]] = []
    for node in parent:
        if _local_name(node.tag) == "DicomAttribute":
            attributes.append(_read_attribute(node))
    attributes.sort(key=lambda pair: pair[0])
    return {tag_key(tag): attribute for tag, attribute in attributes}


def _read_attribute(node: ET.Element) -> tuple[int, dict[str, Any]]:
    tag_text = (node.get("tag") or "").strip()
    if not _HEX_TAG.match(tag_text):
        raise bad_request(f"DicomAttribute with an invalid tag: {tag_text!r}")
    tag = int(tag_text, 16)
    vr = (node.get("vr") or "").strip().upper() or vr_of(tag)
    attribute: dict[str, Any] = {"vr": vr}
    values: dict[int, Any] = {}
    for child in node:
        name = _local_name(child.tag)
        if name == "BulkData":
            attribute["BulkDataURI"] = child.get("uri") or child.get("uuid") or ""
        elif name == "InlineBinary":
            attribute["InlineBinary"] = "".join((child.text or "").split())
        elif name == "Item":
            values[_number_of(child, len(values) + 1)] = _read_dataset(child)
        elif name == "PersonName":
            values[_number_of(child, len(values) + 1)] = _read_person_name(child)
        elif name == "Value":
            values[_number_of(child, len(values) + 1)] = convert_value(vr, child.text or "")
    if values:
        # Value numbers are 1-based; a missing number is an empty value (null in JSON).
        attribute["Value"] = [values.get(number) for number in range(1, max(values) + 1)]
    return tag, attribute


def _read_person_name(node: ET.Element) -> dict[str, str] | None:
    name: dict[str, str] = {}
    for group_node in node:
        group = _local_name(group_node.tag)
        if group not in PERSON_NAME_GROUPS:
            continue
        parts = {_local_name(part.tag): part.text or "" for part in group_node}
        components = [parts.get(component, "") for component in NAME_COMPONENTS]
        text = "^".join(components).rstrip("^")  # trailing empty components are implied
        if text:
            name[group] = text
    return name or None


def _number_of(node: ET.Element, default: int) -> int:
    text = node.get("number")
    if text is None:
        return default
    try:
        number = int(text)
    except ValueError:
        raise bad_request(f"Invalid number attribute: {text!r}") from None
    if not 1 <= number <= 1_000_000:
        raise bad_request(f"Value number out of range: {number}")
    return number


def _local_name(tag: str) -> str:
    """An element name without its `{namespace}` (documents without namespace are accepted)."""
    return tag.rsplit("}", 1)[-1]


__all__ = ["NAMESPACE", "from_native_xml", "to_native_xml"]
