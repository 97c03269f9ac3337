"""Tags, keywords and VRs: the keys of the DICOM JSON model and the dictionaries behind them.

The core gives no VRs, so they come from pydicom's dictionaries (public and private), with the
ambiguous ones ("US or SS", "OB or OW") resolved from the dataset.

Tag paths (`TagPath`) name a value inside nested sequences, as the bulk data callbacks need:
a tuple alternating tags and 0-based item indices, always starting and ending with a tag,
e.g. `(0x00540016, 0, 0x00181072)`. `tag_path_text` gives `"00540016/1/00181072"` (for
WADO-RS bulk data URIs: items from 1, as the official plugin writes them); the core's form is
`orthanc_tags.orthanc_content_path`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from pydicom.datadict import (
    dictionary_VR,
    keyword_for_tag,
    private_dictionary_VR,
    tag_for_keyword,
)

from ..errors import bad_request
from . import transfer_syntax

TagPath = tuple[int, ...]

SPECIFIC_CHARACTER_SET = 0x00080005
PIXEL_DATA_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # float, double, plain

TAG_PATTERN = re.compile(r"^\(?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\s*\)?$")


def tag_key(group_element: int) -> str:
    """The JSON model's key: 8 upper-case hex digits, e.g. "0010000F"."""
    return f"{group_element:08X}"


def parse_tag(text: str) -> int:
    """A tag from "00100010", "0010,0010", "(0010,0010)" or a keyword; HttpError 400 if none."""
    cleaned = text.strip()
    match = TAG_PATTERN.match(cleaned)
    if match:
        return int(match.group(1) + match.group(2), 16)
    tag = tag_for_keyword(cleaned) if cleaned.isidentifier() else None
    if tag is None:
        raise bad_request(f"unknown attribute {text!r}")
    return tag


def keyword_of(tag: int) -> str:
    """The dictionary keyword of a public tag, "" for private or unknown tags."""
    return keyword_for_tag(tag) if not is_private(tag) else ""


def is_private(tag: int) -> bool:
    """A private data element or reservation (odd group, except the reserved ones)."""
    group = tag >> 16
    return bool(group & 1) and group not in (0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF)


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
    if is_private(tag):
        if 0x0010 <= element <= 0x00FF:
            return "LO"  # private creator
        vr = private_dictionary_vr(tag, private_creator) if private_creator else None
    else:
        vr = dictionary_vr(tag)
    if vr is None:
        return "UN"
    return _resolve_ambiguous_vr(vr, context or {}, binary) if " or " in vr else vr


@lru_cache(maxsize=8192)
def dictionary_vr(tag: int) -> str | None:
    """The public dictionary's VR of a tag, ambiguous ones as written ("US or SS"); cached."""
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


@lru_cache(maxsize=4096)
def private_dictionary_vr(tag: int, private_creator: str) -> str | None:
    """The private dictionary's VR of a tag of a creator; cached."""
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


def tag_path_text(path: Sequence[int]) -> str:
    """`(0x00540016, 0, 0x00181072)` -> "00540016/1/00181072": the bulk data path of a
    BulkDataURI as the official plugin writes it (lower-case tags, items counted from 1), so
    that URIs kept by clients resolve alike on both plugins."""
    return "/".join(
        f"{part:08x}" if index % 2 == 0 else str(part + 1) for index, part in enumerate(path)
    )


__all__ = [
    "PIXEL_DATA_TAGS",
    "SPECIFIC_CHARACTER_SET",
    "TagPath",
    "dictionary_vr",
    "is_private",
    "keyword_of",
    "parse_tag",
    "private_dictionary_vr",
    "tag_key",
    "tag_path_text",
    "vr_of",
]
