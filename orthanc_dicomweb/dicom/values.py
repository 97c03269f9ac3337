"""Values of the DICOM JSON model (PS3.18 F.2): one attribute's values in the JSON types of its
VR, from the core's text (values joined by backslashes), numbers or raw little-endian bytes.

Person names become `{"Alphabetic", "Ideographic", "Phonetic"}` objects; IS/DS numbers (kept
as text when they do not parse); numbers beyond 2**53 text; NaN and infinities the strings
"NaN", "Infinity", "-Infinity"; AT values 8-hex-digit keys.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .tags import TAG_PATTERN, tag_key

# VRs whose values may only be InlineBinary or BulkDataURI in the JSON model.
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# Single-valued text: a backslash there is a character, not a value separator.
TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})
# O* VRs are listed too: their values are numbers in the "ArrayOfValues" binary mode.
INTEGER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "OB", "OW", "OL", "OV"})
FLOAT_VRS = frozenset({"FL", "FD", "OF", "OD"})
_PLAIN_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "SH", "TM", "UC", "UI"})
# Numbers the core reads from binary: "Null" when empty (the short format: null).
# VRs whose text values from the core convert without looking at anything else.
CONTEXT_FREE_TEXT_VRS = (
    _PLAIN_STRING_VRS | TEXT_VRS | {"PN", "IS", "DS"} | ((INTEGER_VRS | FLOAT_VRS) - BINARY_VRS)
)
PERSON_NAME_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")

# Beyond 2**53 a JSON number read as an IEEE double loses digits (PS3.18 F.2.3.1).
_MAX_EXACT_NUMBER = 2**53
ARRAY_FORMATS = {"OB": "B", "OW": "H", "OL": "I", "OV": "Q", "OF": "f", "OD": "d"}
_NUMBER_FORMATS = {
    **ARRAY_FORMATS,
    **{"US": "H", "SS": "h", "UL": "I", "SL": "i", "UV": "Q", "SV": "q", "FL": "f", "FD": "d"},
}


def element(vr: str, values: Sequence[Any] | None) -> dict[str, Any]:
    """One attribute: `{"vr": vr}`, plus "Value" when at least one value is not empty.

    `values` are raw values (strings as the core gives them, numbers, or datasets for SQ);
    they are converted to the JSON types of the VR. Empty values of a multi-valued attribute
    become null, as F.2.5 requires.
    """
    if not values:
        return {"vr": vr}
    if vr == "SQ":
        return {"vr": vr, "Value": list(values)}
    return attribute_of(vr, _non_empty([convert_value(vr, value) for value in values]))


def element_from_text(vr: str, text: str | None) -> dict[str, Any]:
    """One attribute from the core's text form, values separated by backslashes."""
    return attribute_of(vr, values_from_text(vr, text) if text else None)


def values_from_text(vr: str, text: str) -> list[Any] | None:
    """The JSON values of the core's text form of a value; None when all are empty."""
    if vr in _PLAIN_STRING_VRS and "\\" not in text:
        # The bulk of a dataset: one plain string value.
        value = text.strip(" \0")
        return [value] if value else None
    parse = _TEXT_PARSERS.get(vr, _plain_string)
    if "\\" not in text or vr in TEXT_VRS:
        value = parse(text)
        return None if value is None else [value]
    return _non_empty([parse(part) for part in text.split("\\")])


def split_values(vr: str, text: str) -> list[str]:
    """The values of a DICOM string: backslash-separated, except in LT/ST/UT/UR."""
    return [text] if vr in TEXT_VRS else text.split("\\")


def convert_value(vr: str, value: Any) -> Any:
    """One value in the JSON type of its VR; None for an empty value.

    Numbers that do not parse are kept as strings rather than dropped: an odd value is better
    than a silently missing one. Non-finite floats become "NaN", "Infinity", "-Infinity".
    """
    if value is None:
        return None
    if isinstance(value, str) or vr in ("PN", "AT"):
        return _TEXT_PARSERS.get(vr, _plain_string)(value)
    return _json_number(value) if isinstance(value, float) else value


def attribute_of(vr: str, values: list[Any] | None) -> dict[str, Any]:
    """One attribute from values already in their JSON types (None: none)."""
    return {"vr": vr, "Value": values} if values else {"vr": vr}


def _non_empty(values: list[Any]) -> list[Any] | None:
    for value in values:
        if value is not None:
            return values
    return None


def person_name(value: str | Mapping[str, str]) -> dict[str, str] | None:
    """A PN value as `{"Alphabetic", "Ideographic", "Phonetic"}`; None when it has no text.

    Every component group the value holds is kept, empty ones too (`Wang^XiaoDong=王^小东=`
    has three, its Phonetic group ""), as the official plugin (the core's DICOMweb writer)
    answers and Orthanc's suite expects: the groups are the value's structure, not noise.
    """
    if isinstance(value, Mapping):
        name = {key: value[key] for key in PERSON_NAME_GROUPS if isinstance(value.get(key), str)}
    else:
        groups = value.strip(" \0").split("=")
        name = dict(zip(PERSON_NAME_GROUPS, (group.rstrip(" ") for group in groups), strict=False))
    return name if any(name.values()) else None


# Parsers of one padded text value of a VR: None when empty, numbers that do not parse kept
# as text. Each strips its padding itself: one call per value is what a dataset costs.


def _integer_string(text: str) -> int | str | None:
    value = text.strip(" \0")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    number = _decimal_string(value)  # "12.0" is seen in the wild
    return number if isinstance(number, int) else value


def _decimal_string(text: str) -> int | float | str | None:
    """DS as a number: an int when integral ("5.000000" -> 5), else a float ("1.50000" -> 1.5)."""
    value = text.strip(" \0")
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        return value  # not a valid DS; keep it readable rather than emit invalid JSON
    if number.is_integer() and abs(number) < _MAX_EXACT_NUMBER:
        return int(number)
    return number


def _binary_integer(text: str) -> int | str | None:
    value = text.strip(" \0")
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        return value
    return str(number) if abs(number) > _MAX_EXACT_NUMBER else number


def _binary_float(text: str) -> float | str | None:
    value = text.strip(" \0")
    if not value:
        return None
    try:
        return _json_number(float(value))
    except ValueError:
        return value


def _json_number(number: float) -> float | str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def _attribute_tag(value: Any) -> str | None:
    if isinstance(value, int):
        return tag_key(value)
    text = str(value).strip()
    if not text:
        return None
    match = TAG_PATTERN.match(text)
    return (match.group(1) + match.group(2)).upper() if match else text


def _plain_string(text: str) -> str | None:
    return text.strip(" \0") or None


def _text(text: str) -> str | None:
    """LT, ST, UT: leading spaces are significant."""
    return text.rstrip(" \0") or None


def _uri(text: str) -> str | None:
    return text.strip(" ") or None


# One text value -> its JSON value, by VR (other VRs: `_plain_string`). Looked up once per
# attribute, so that converting a dataset costs a dictionary lookup and a call per value.
_TEXT_PARSERS: dict[str, Callable[[Any], Any]] = {
    "PN": person_name,
    "AT": _attribute_tag,
    "LT": _text,
    "ST": _text,
    "UT": _text,
    "UR": _uri,
    "IS": _integer_string,
    "DS": _decimal_string,
    **{vr: _binary_integer for vr in INTEGER_VRS},
    **{vr: _binary_float for vr in FLOAT_VRS},
}


def binary_values(vr: str, data: bytes) -> list[int | float | str]:
    """The little-endian numbers held in an O* or US/SS/UL/SL/UV/SV/FL/FD value (a trailing
    partial number is ignored)."""
    code = _NUMBER_FORMATS[vr]
    count = len(data) // struct.calcsize(code)
    numbers = struct.unpack(f"<{count}{code}", data[: count * struct.calcsize(code)])
    if vr in FLOAT_VRS:
        return [_json_number(number) for number in numbers]
    return list(numbers)


def attribute_tags(data: bytes) -> list[int]:
    """The tags of a raw little-endian AT value (group then element, 16 bits each)."""
    count = len(data) // 4
    words = struct.unpack(f"<{count * 2}H", data[: count * 4])
    return [words[i] << 16 | words[i + 1] for i in range(0, len(words), 2)]


__all__ = [
    "ARRAY_FORMATS",
    "BINARY_VRS",
    "CONTEXT_FREE_TEXT_VRS",
    "FLOAT_VRS",
    "INTEGER_VRS",
    "PERSON_NAME_GROUPS",
    "TEXT_VRS",
    "attribute_of",
    "attribute_tags",
    "binary_values",
    "convert_value",
    "element",
    "element_from_text",
    "person_name",
    "split_values",
    "values_from_text",
]
