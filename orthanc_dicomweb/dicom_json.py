"""The DICOM JSON Model (PS3.18 Annex F): the one encoder of QIDO-RS, WADO-RS metadata and STOW-RS.

Sources are the core's JSON, not pydicom datasets: parsing every DICOM file again in Python
would cost far more than the core's `/instances/{id}/tags` (see runtime-facts.md). The core
gives no VRs, so they come from pydicom's dictionaries (public and private).

Values from the core are already Unicode: answers are always UTF-8. SpecificCharacterSet
stays the file's in datasets read from files (`character_set_element`, as the official
plugin); the core's main tags have none, and get "ISO_IR 192" (`utf8_charset_element`).

Tag paths (`TagPath`) name a value inside nested sequences, as the bulk data callbacks need:
a tuple alternating tags and 0-based item indices, always starting and ending with a tag,
e.g. `(0x00540016, 0, 0x00181072)`. `tag_path_text` gives `"00540016/1/00181072"` (for
WADO-RS bulk data URIs: items from 1, as the official plugin writes them) and
`orthanc_content_path` gives `"0054-0016/0/0018-1072"` (for the core's
`/instances/{id}/content/...`, which answers the raw bytes of the value).
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson
from pydicom import charset as pydicom_charset
from pydicom.datadict import (
    dictionary_VR,
    keyword_for_tag,
    private_dictionary_VR,
    tag_for_keyword,
)

from orthanc_dicomweb import transfer_syntax
from orthanc_dicomweb.errors import HttpError, bad_request

TagPath = tuple[int, ...]
Dataset = dict[str, Any]

SPECIFIC_CHARACTER_SET = 0x00080005
PIXEL_DATA_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # float, double, plain

# VRs whose values may only be InlineBinary or BulkDataURI in the JSON model.
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# Single-valued text: a backslash there is a character, not a value separator.
TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})
# O* VRs are listed too: their values are numbers in the "ArrayOfValues" binary mode.
INTEGER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "OB", "OW", "OL", "OV"})
FLOAT_VRS = frozenset({"FL", "FD", "OF", "OD"})
_PLAIN_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "SH", "TM", "UC", "UI"})
# Numbers the core reads from binary: "Null" when empty (the short format: null).
_BINARY_ENCODED_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"})
# VRs whose text values from the core convert without looking at anything else.
_CONTEXT_FREE_TEXT_VRS = (
    _PLAIN_STRING_VRS | TEXT_VRS | {"PN", "IS", "DS"} | ((INTEGER_VRS | FLOAT_VRS) - BINARY_VRS)
)
PERSON_NAME_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
OTHER_BINARY_MODES = ("BulkDataURI", "InlineBinary", "ArrayOfValues")

# Beyond 2**53 a JSON number read as an IEEE double loses digits (PS3.18 F.2.3.1).
_MAX_EXACT_NUMBER = 2**53
_ARRAY_FORMATS = {"OB": "B", "OW": "H", "OL": "I", "OV": "Q", "OF": "f", "OD": "d"}
_NUMBER_FORMATS = {
    **_ARRAY_FORMATS,
    **{"US": "H", "SS": "h", "UL": "I", "SL": "i", "UV": "Q", "SV": "q", "FL": "f", "FD": "d"},
}
_CHARSET_SEPARATOR = re.compile(r"[\\\u00a5]")  # backslash, or yen (see `character_set_terms`)
_TAG_PATTERN = re.compile(r"^\(?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\s*\)?$")


# --- Tags, keywords and VRs ---------------------------------------------------------------


def tag_key(group_element: int) -> str:
    """The JSON model's key: 8 upper-case hex digits, e.g. "0010000F"."""
    return f"{group_element:08X}"


def parse_tag(text: str) -> int:
    """A tag from "00100010", "0010,0010", "(0010,0010)" or a keyword; HttpError 400 if none."""
    cleaned = text.strip()
    match = _TAG_PATTERN.match(cleaned)
    if match:
        return int(match.group(1) + match.group(2), 16)
    tag = tag_for_keyword(cleaned) if cleaned.isidentifier() else None
    if tag is None:
        raise bad_request(f"unknown attribute {text!r}")
    return tag


def keyword_of(tag: int) -> str:
    """The dictionary keyword of a public tag, "" for private or unknown tags."""
    return keyword_for_tag(tag) if not _is_private(tag) else ""


def vr_of(
    tag: int,
    context: Mapping[str, Any] | None = None,
    private_creator: str | None = None,
    *,
    binary: bool = False,
) -> str:
    """The VR of a tag from the dictionaries, with ambiguous VRs resolved.

    `context` holds what resolves them, by keyword: PixelRepresentation (US or SS),
    BitsAllocated and TransferSyntaxUID (OB or OW). `binary` says the core holds the value as
    binary, which picks OW in "US or OW" and "US or SS or OW". Private tags use pydicom's
    private dictionary when their creator is known; anything unknown is "UN".
    """
    element = tag & 0xFFFF
    if element == 0:
        return "UL"  # group length
    if _is_private(tag):
        if 0x0010 <= element <= 0x00FF:
            return "LO"  # private creator
        vr = _private_dictionary_vr(tag, private_creator) if private_creator else None
    else:
        vr = _dictionary_vr(tag)
    if vr is None:
        return "UN"
    return _resolve_ambiguous_vr(vr, context or {}, binary) if " or " in vr else vr


def forget_dictionary_lookups() -> None:
    """Drop the cached dictionary lookups: to be called when pydicom's dictionaries grow (the
    `Dictionary` configuration option, see `dictionary.py`)."""
    lookups = (_dictionary_vr, _private_dictionary_vr, _context_free_private_vr, _orthanc_key)
    for cached in (*lookups, _main_tag):
        cached.cache_clear()


def orthanc_context(tags: Mapping[str, Any]) -> dict[str, Any]:
    """The VR-resolving context of a dataset in the core's full or short tag format."""
    context: dict[str, Any] = {}
    for keyword, key in (
        ("PixelRepresentation", "0028,0103"),
        ("BitsAllocated", "0028,0100"),
        ("TransferSyntaxUID", "0002,0010"),
    ):
        text = orthanc_text(tags.get(key))
        if text is not None:
            context[keyword] = text.strip()
    return context


def orthanc_text(entry: Any) -> str | None:
    """The text of one entry of the core's tags, full (`{"Type": "String", "Value": ...}`) or
    short (`?short`: the text itself); None for anything else."""
    if isinstance(entry, dict):
        entry = entry.get("Value") if entry.get("Type") == "String" else None
    return entry if isinstance(entry, str) else None


@lru_cache(maxsize=8192)
def _dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


@lru_cache(maxsize=4096)
def _private_dictionary_vr(tag: int, private_creator: str) -> str | None:
    try:
        return private_dictionary_VR(tag, private_creator)
    except KeyError:
        return None


def _resolve_ambiguous_vr(vr: str, context: Mapping[str, Any], binary: bool) -> str:
    choices = vr.split(" or ")
    if "US" in choices and not binary:
        signed = str(context.get("PixelRepresentation", "0")).strip() == "1"
        return "SS" if signed and "SS" in choices else "US"
    if "OW" in choices:
        return "OB" if "OB" in choices and _is_byte_data(context) else "OW"
    return choices[0]


def _is_byte_data(context: Mapping[str, Any]) -> bool:
    """OB rather than OW: 8-bit samples, or encapsulated (compressed) pixel data."""
    syntax = str(context.get("TransferSyntaxUID", "")).strip()
    if syntax and syntax not in transfer_syntax.NATIVE:
        return True
    try:
        return int(str(context.get("BitsAllocated", "16")).strip()) <= 8
    except ValueError:
        return False


def _is_private(tag: int) -> bool:
    group = tag >> 16
    return bool(group & 1) and group not in (0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF)


# --- Tag paths --------------------------------------------------------------------------------


def tag_path_text(path: Sequence[int]) -> str:
    """`(0x00540016, 0, 0x00181072)` -> "00540016/1/00181072": the bulk data path of a
    BulkDataURI as the official plugin writes it (lower-case tags, items counted from 1), so
    that URIs kept by clients resolve alike on both plugins."""
    return "/".join(
        f"{part:08x}" if index % 2 == 0 else str(part + 1) for index, part in enumerate(path)
    )


def orthanc_content_path(path: Sequence[int]) -> str:
    """`(0x00540016, 0, 0x00181072)` -> "0054-0016/0/0018-1072", as the core's /content wants."""
    return "/".join(
        f"{part >> 16:04x}-{part & 0xFFFF:04x}" if index % 2 == 0 else str(part)
        for index, part in enumerate(path)
    )


# --- Values and attributes --------------------------------------------------------------------


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
    return _attribute(vr, _non_empty([convert_value(vr, value) for value in values]))


def element_from_text(vr: str, text: str | None) -> dict[str, Any]:
    """One attribute from the core's text form, values separated by backslashes."""
    return _attribute(vr, values_from_text(vr, text) if text else None)


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


def _attribute(vr: str, values: list[Any] | None) -> dict[str, Any]:
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


def character_set_terms(text: str) -> list[str]:
    """The values of a SpecificCharacterSet as the core gives them, empty ones included.

    The core decodes the value through the repertoire it names: with ISO 2022 IR 13 (JIS X
    0201) the separator 0x5C reads as "¥". Defined terms are ASCII, so both separate values.
    """
    return [term.strip(" \0") for term in _CHARSET_SEPARATOR.split(text)]


def character_set_element(text: str | None) -> dict[str, Any]:
    """SpecificCharacterSet as the file has it, its empty values left out: what the official
    plugin answers (and Orthanc's suite expects) in metadata, although the JSON is Unicode."""
    return element("CS", [term for term in character_set_terms(text or "") if term])


def utf8_charset_element() -> dict[str, Any]:
    """SpecificCharacterSet for answers: the JSON model is always Unicode, sent as UTF-8."""
    return {"vr": "CS", "Value": ["ISO_IR 192"]}


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
    match = _TAG_PATTERN.match(text)
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

# --- Binary values and the bulk data policy --------------------------------------------------


@dataclass(frozen=True)
class BulkDataPolicy:
    """How binary and over-long values appear in metadata (WADO-RS passes its `OtherBinaryMode`).

    - Pixel data (7FE0,0008/0009/0010, at any depth) is always a BulkDataURI.
    - An empty value is `{"vr": vr}` alone, in every mode (F.2.5). The core's tags say "Null"
      for empty and non-empty binary values alike: the value is read to tell them apart.
    - OB/OD/OF/OL/OV/OW/UN values follow `mode`: "BulkDataURI" -> `uri_for(path)`;
      "InlineBinary" -> base64 of `read_binary(path)`; "ArrayOfValues" -> the bytes read as
      little-endian numbers of the VR's width in "Value" (OB bytes, OW uint16, OL uint32,
      OV uint64, OF float32, OD float64; UN falls back to BulkDataURI).
    - Text values too long for the core's /tags (Type "TooLong") are read through
      `read_binary` when given, else a BulkDataURI.
    - AT values are read through `read_binary` when given: the core's text keeps only the
      first tag of a multi-valued AT.
    When the callback a case needs is missing, the next possible form is used; when none is
    possible the attribute is left out of the dataset (None).
    """

    mode: str = "BulkDataURI"
    uri_for: Callable[[TagPath], str] | None = None
    read_binary: Callable[[TagPath], bytes] | None = None

    def binary_element(
        self, path: TagPath, vr: str, inline: bytes | None = None
    ) -> dict[str, Any] | None:
        """The attribute for a binary value; `inline` when its bytes are already at hand."""
        if path[-1] in PIXEL_DATA_TAGS:
            return self._uri_element(path, vr)
        data = inline if inline is not None else self._read(path)
        if data == b"":
            return {"vr": vr}
        if self.mode == "InlineBinary" and data is not None:
            return {"vr": vr, "InlineBinary": base64.b64encode(data).decode("ascii")}
        if self.mode == "ArrayOfValues" and vr in _ARRAY_FORMATS and data is not None:
            return element(vr, binary_values(vr, data))
        by_uri = self._uri_element(path, vr)
        if by_uri is None and inline is not None:
            return {"vr": vr, "InlineBinary": base64.b64encode(inline).decode("ascii")}
        return by_uri

    def too_long_element(
        self, path: TagPath, vr: str, context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The attribute for a text value the core left out for its length."""
        data = self._read(path)
        if data is not None:
            return element_from_text(vr, decode_text(data, context.get("SpecificCharacterSet")))
        return self._uri_element(path, vr)

    def _uri_element(self, path: TagPath, vr: str) -> dict[str, Any] | None:
        return None if self.uri_for is None else {"vr": vr, "BulkDataURI": self.uri_for(path)}

    def _read(self, path: TagPath) -> bytes | None:
        return None if self.read_binary is None else self.read_binary(path)


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


def decode_text(data: bytes, specific_character_set: str | None) -> str:
    """Raw text bytes of a dataset as Unicode, through its SpecificCharacterSet."""
    if data.isascii():
        return data.decode("ascii")
    terms = character_set_terms(specific_character_set or "")
    try:
        encodings = pydicom_charset.convert_encodings(terms if any(terms) else ["ISO_IR 192"])
    except (LookupError, ValueError):  # a garbled name (e.g. with a NUL): what is not a charset
        encodings = pydicom_charset.convert_encodings(["ISO_IR 192"])
    # Backslash (0x5C) is the value delimiter that resets ISO 2022 code extensions.
    return pydicom_charset.decode_bytes(data, encodings, {0x5C})


# --- From the core's JSON -------------------------------------------------------------------


def from_orthanc_tags(
    tags: Mapping[str, Any],
    bulk_data: BulkDataPolicy | None = None,
    context: Mapping[str, Any] | None = None,
) -> Dataset:
    """A dataset in the core's full or short tag format (`GET /instances/{id}/tags[?short]`)
    as DICOM JSON.

    The full format (Orthanc 1.10.1): keys "gggg,eeee" (lower-case hex), values
    `{"Name", "Type", "Value"}` (plus "PrivateCreator" for most private tags) with Type
    "String" (Value: the text, multiple values joined by backslashes), "Sequence" (Value: a
    list of datasets in the same format), "Null" (Value null: a binary value left out, or an
    empty value of a binary-encoded VR such as US or FL),
    "TooLong" (text longer than 256 characters left out, Value null) or "Binary" (a data URI;
    not produced by /tags but handled). The short format has the same keys with the Value
    alone: text, a list of datasets, or null for both "Null" and "TooLong" (the VR tells them
    apart; an empty or too long US, FL, AT... is read through `bulk_data`). It is cheaper for
    the core to write and for Python to parse. Private creators come from the dataset's
    reservations. Binary values follow `bulk_data` (see `BulkDataPolicy`); without a policy
    they are left out. `context` resolves ambiguous VRs (see `vr_of`); it is read from the
    dataset when not given.
    """
    if context is None:
        context = orthanc_context(tags)
        charset = orthanc_text(tags.get("0008,0005"))
        if charset is not None:
            context["SpecificCharacterSet"] = charset
    return _convert_orthanc_dataset(tags, bulk_data, context, ())


def from_main_dicom_tags(tags: Mapping[str, Any]) -> Dataset:
    """The core's simplified tags (keyword or "gggg,eeee" -> text, as `/tools/find` with
    `Expand` answers them in MainDicomTags) as DICOM JSON. Unknown keywords are left out."""
    converted: list[tuple[int, dict[str, Any]]] = []
    for name, value in tags.items():
        tag = _main_tag(name)
        if tag is None:
            continue
        if tag == SPECIFIC_CHARACTER_SET:
            converted.append((tag, utf8_charset_element()))
            continue
        text = value if isinstance(value, str) or value is None else str(value)
        converted.append((tag, element_from_text(vr_of(tag), text)))
    converted.sort(key=lambda pair: pair[0])
    return {tag_key(tag): attribute for tag, attribute in converted}


@lru_cache(maxsize=4096)
def _main_tag(name: str) -> int | None:
    """The tag of a name of the core's main tags; None for a name the dictionary does not know."""
    try:
        return parse_tag(name)
    except HttpError:
        return None


def _convert_orthanc_dataset(
    tags: Mapping[str, Any],
    policy: BulkDataPolicy | None,
    context: Mapping[str, Any],
    parent: TagPath,
) -> Dataset:
    dataset: Dataset = {}
    for tag, json_key, fixed_vr, creator_key, key in sorted(map(_orthanc_key, tags), key=_TAG):
        entry = tags[key]
        if entry.__class__ is dict:  # the full format; inline: this runs for every attribute
            text = entry.get("Value") if entry.get("Type") == "String" else None
        else:
            text = entry if entry.__class__ is str else None
        if text is not None:
            # The bulk of a dataset: text whose VR needs no context, converted here directly.
            vr = fixed_vr
            if vr is None and creator_key is not None:
                vr = _private_text_vr(tag, entry, tags.get(creator_key))
            if vr is not None:
                dataset[json_key] = _attribute(vr, values_from_text(vr, text) if text else None)
                continue
        attribute = _convert_orthanc_entry(tag, entry, tags, policy, context, (*parent, tag))
        if attribute is not None:
            dataset[json_key] = attribute
    return dataset


_TAG = itemgetter(0)
_NULL_OR_TOO_LONG = "NullOrTooLong"  # a null value of the short format


def _orthanc_entry_parts(entry: Any) -> tuple[str | None, Any, str | None]:
    """Type, Value and PrivateCreator of an entry of the core's full or short format."""
    if isinstance(entry, dict):
        return entry.get("Type"), entry.get("Value"), entry.get("PrivateCreator")
    if isinstance(entry, str):
        return "String", entry, None
    if isinstance(entry, list):
        return "Sequence", entry, None
    return _NULL_OR_TOO_LONG, None, None


def _convert_orthanc_entry(
    tag: int,
    entry: Any,
    siblings: Mapping[str, Any],
    policy: BulkDataPolicy | None,
    context: Mapping[str, Any],
    path: TagPath,
) -> dict[str, Any] | None:
    kind, value, creator = _orthanc_entry_parts(entry)
    if kind == "Sequence":
        items = [
            _convert_orthanc_dataset(item, policy, context, (*path, index))
            for index, item in enumerate(value or ())
        ]
        return element("SQ", items)
    if tag == SPECIFIC_CHARACTER_SET:
        return character_set_element(value if kind == "String" else None)
    creator = creator or _private_creator_in(siblings, tag)
    is_binary = kind in ("Null", "Binary", _NULL_OR_TOO_LONG)
    vr = vr_of(tag, context, creator, binary=is_binary)
    if kind == "String":
        if vr == "AT" and policy is not None and policy.read_binary is not None:
            # The core's text holds only the first tag of a multi-valued AT (1.10.1).
            return element("AT", attribute_tags(policy.read_binary(path)))
        if vr in BINARY_VRS:
            # Text from the core for a tag we cannot type (unknown private): its real bytes
            # may be numbers, so it can only be sent as binary.
            return _binary(policy, path, vr) if value else element(vr, None)
        return element_from_text(vr, value)
    if kind in ("TooLong", _NULL_OR_TOO_LONG):
        # The short format's null is also an empty sequence, or an empty US/FL/AT... value
        # (reading tells the latter apart).
        if vr == "SQ":
            return element(vr, None)
        if vr in _BINARY_ENCODED_NUMBER_VRS:
            return _read_numbers(policy, path, vr)
        if vr in BINARY_VRS:
            return _binary(policy, path, vr)
        return None if policy is None else policy.too_long_element(path, vr, context)
    if is_binary and vr not in BINARY_VRS:
        # The core also says "Null" for an empty US/SS/UL/SL/FL/FD... value (seen on 1.10.1).
        return element(vr, None)
    if is_binary:
        inline = _data_uri_bytes(value) if kind == "Binary" else None
        return _binary(policy, path, vr, inline)
    return element(vr, None)


def _read_numbers(policy: BulkDataPolicy | None, path: TagPath, vr: str) -> dict[str, Any]:
    """A binary-encoded number or AT value from its bytes (empty without a way to read)."""
    if policy is None or policy.read_binary is None:
        return element(vr, None)
    data = policy.read_binary(path)
    return element(vr, attribute_tags(data) if vr == "AT" else binary_values(vr, data))


def _binary(
    policy: BulkDataPolicy | None, path: TagPath, vr: str, inline: bytes | None = None
) -> dict[str, Any] | None:
    if policy is None:
        return None
    return policy.binary_element(path, vr, inline)


@lru_cache(maxsize=65536)
def _orthanc_key(key: str) -> tuple[int, str, str | None, str | None, str]:
    """A core key "gggg,eeee" as (tag, JSON model key, fixed VR, creator key, key); cached:
    the same keys recur in every dataset.

    The fixed VR is the dictionary VR of public tags whose text values convert alone; None
    sends the attribute through `_private_text_vr` (private data elements, whose creator is
    at the creator key) or `_convert_orthanc_entry` (sequences, ambiguous tags, binary or AT
    values, SpecificCharacterSet).
    """
    try:
        tag = int(key[0:4], 16) << 16 | int(key[5:9], 16)
    except ValueError:
        tag = parse_tag(key)
    return tag, tag_key(tag), _fixed_vr(tag), _creator_key(tag), key


def _creator_key(tag: int) -> str | None:
    """The core key of the reservation (gggg,00xx) of a private data element's block."""
    if not _is_private(tag) or (tag & 0xFFFF) < 0x1000:
        return None
    return f"{tag >> 16:04x},00{(tag >> 8) & 0xFF:02x}"


def _fixed_vr(tag: int) -> str | None:
    if tag == SPECIFIC_CHARACTER_SET:
        return None
    vr = vr_of(tag)  # private data elements are "UN" here: see `_private_text_vr`
    return vr if _is_context_free(vr, _dictionary_vr(tag)) else None


def _private_text_vr(tag: int, entry: Any, reservation: Any) -> str | None:
    """The VR of a private data element's text value when it needs no context, else None."""
    creator = entry.get("PrivateCreator") if entry.__class__ is dict else None
    if not creator:
        creator = orthanc_text(reservation)
    return _context_free_private_vr(tag, creator.strip()) if creator else None


@lru_cache(maxsize=16384)
def _context_free_private_vr(tag: int, creator: str) -> str | None:
    vr = vr_of(tag, None, creator)
    return vr if _is_context_free(vr, _private_dictionary_vr(tag, creator)) else None


def _is_context_free(vr: str, dictionary_vr: str | None) -> bool:
    return vr in _CONTEXT_FREE_TEXT_VRS and " or " not in (dictionary_vr or "")


def _private_creator_in(siblings: Mapping[str, Any], tag: int) -> str | None:
    """The creator of a private tag, read from its block's reservation in the same dataset."""
    key = _creator_key(tag)
    value = orthanc_text(siblings.get(key)) if key is not None else None
    return value.strip() if value is not None else None


def _data_uri_bytes(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value.startswith("data:"):
        return None
    _, _, payload = value.partition(";base64,")
    try:
        return base64.b64decode(payload, validate=False)
    except ValueError:
        return None


# --- Serialisation ----------------------------------------------------------------------------


def encode_datasets(datasets: Iterable[Mapping[str, Any]]) -> bytes:
    """A JSON array of datasets, compact UTF-8 (what QIDO-RS and WADO-RS metadata answer)."""
    return encode_json(list(datasets))


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON (orjson: 20x faster than `json` on a QIDO-RS answer of 400 studies,
    the same bytes). Conversion leaves no NaN or infinity (they are not JSON)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # A lone surrogate from a badly decoded value, or an integer beyond 64 bits: replaced
        # or written by the standard encoder rather than failing the whole answer.
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8", errors="replace")


__all__ = [
    "BINARY_VRS",
    "OTHER_BINARY_MODES",
    "PERSON_NAME_GROUPS",
    "BulkDataPolicy",
    "Dataset",
    "TagPath",
    "attribute_tags",
    "binary_values",
    "character_set_element",
    "character_set_terms",
    "convert_value",
    "decode_text",
    "element",
    "element_from_text",
    "encode_datasets",
    "encode_json",
    "from_main_dicom_tags",
    "from_orthanc_tags",
    "keyword_of",
    "orthanc_content_path",
    "orthanc_context",
    "orthanc_text",
    "parse_tag",
    "person_name",
    "split_values",
    "tag_key",
    "tag_path_text",
    "utf8_charset_element",
    "values_from_text",
    "vr_of",
]
