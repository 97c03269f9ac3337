"""The DICOM JSON Model (PS3.18 Annex F): the one encoder of QIDO-RS, WADO-RS metadata and STOW-RS.

Sources are the core's JSON, not pydicom datasets: parsing every DICOM file again in Python
would cost far more than the core's `/instances/{id}/tags` (see runtime-facts.md). The parts:
tags, keys and VRs are `dicom_tags`'s; the core's "gggg,eeee" format `orthanc_tags`'s; values
in the JSON types of their VR `dicom_values`'s; SpecificCharacterSet `character_sets`'s;
binary and over-long values follow a `bulk_data_policy.BulkDataPolicy`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import HttpError
from ..orthanc.tags import creator_key, orthanc_context, orthanc_text, tag_of_orthanc_key
from .character_sets import character_set_element, utf8_charset_element
from .tags import (
    SPECIFIC_CHARACTER_SET,
    TagPath,
    dictionary_vr,
    parse_tag,
    private_dictionary_vr,
    tag_key,
    vr_of,
)
from .values import (
    BINARY_VRS,
    CONTEXT_FREE_TEXT_VRS,
    attribute_of,
    attribute_tags,
    binary_values,
    element,
    element_from_text,
    values_from_text,
)

if TYPE_CHECKING:
    from .bulk_data_policy import BulkDataPolicy

Dataset = dict[str, Any]

# Numbers the core reads from binary: "Null" when empty (the short format: null).
_BINARY_ENCODED_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"})


def forget_dictionary_lookups() -> None:
    """Drop the cached dictionary lookups: to be called when pydicom's dictionaries grow (the
    `Dictionary` configuration option, see `dictionary.py`)."""
    lookups = (dictionary_vr, private_dictionary_vr, _context_free_private_vr, _orthanc_key)
    for cached in (*lookups, _main_tag):
        cached.cache_clear()


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
    for tag, json_key, fixed_vr, reservation, key in sorted(map(_orthanc_key, tags), key=_TAG):
        entry = tags[key]
        if entry.__class__ is dict:  # the full format; inline: this runs for every attribute
            text = entry.get("Value") if entry.get("Type") == "String" else None
        else:
            text = entry if entry.__class__ is str else None
        if text is not None:
            # The bulk of a dataset: text whose VR needs no context, converted here directly.
            vr = fixed_vr
            if vr is None and reservation is not None:
                vr = _private_text_vr(tag, entry, tags.get(reservation))
            if vr is not None:
                dataset[json_key] = attribute_of(vr, values_from_text(vr, text) if text else None)
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
    tag = tag_of_orthanc_key(key)
    if tag is None:
        tag = parse_tag(key)
    return tag, tag_key(tag), _fixed_vr(tag), creator_key(tag), key


def _fixed_vr(tag: int) -> str | None:
    if tag == SPECIFIC_CHARACTER_SET:
        return None
    vr = vr_of(tag)  # private data elements are "UN" here: see `_private_text_vr`
    return vr if _is_context_free(vr, dictionary_vr(tag)) else None


def _private_text_vr(tag: int, entry: Any, reservation: Any) -> str | None:
    """The VR of a private data element's text value when it needs no context, else None."""
    creator = entry.get("PrivateCreator") if entry.__class__ is dict else None
    if not creator:
        creator = orthanc_text(reservation)
    return _context_free_private_vr(tag, creator.strip()) if creator else None


@lru_cache(maxsize=16384)
def _context_free_private_vr(tag: int, creator: str) -> str | None:
    vr = vr_of(tag, None, creator)
    return vr if _is_context_free(vr, private_dictionary_vr(tag, creator)) else None


def _is_context_free(vr: str, listed_vr: str | None) -> bool:
    return vr in CONTEXT_FREE_TEXT_VRS and " or " not in (listed_vr or "")


def _private_creator_in(siblings: Mapping[str, Any], tag: int) -> str | None:
    """The creator of a private tag, read from its block's reservation in the same dataset."""
    key = creator_key(tag)
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
    "Dataset",
    "encode_datasets",
    "encode_json",
    "forget_dictionary_lookups",
    "from_main_dicom_tags",
    "from_orthanc_tags",
]
