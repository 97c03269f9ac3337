"""The core's tag format: "gggg,eeee" keys, its text entries, its `/content` paths.

The core names a tag "gggg,eeee" (lower-case hex) in `/instances/{id}/tags` (full or `?short`),
in `/tools/find` queries and in `Dictionary` entries; a private data element's creator is at
its block's reservation "gggg,00xx". This module is the one place that writes and reads that
form; `dicom_json.from_orthanc_tags` turns such datasets into the DICOM JSON model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..dicom.tags import is_private


def orthanc_key(tag: int) -> str:
    """The core's name of a tag: "gggg,eeee" in lower-case hex."""
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def tag_of_orthanc_key(key: str) -> int | None:
    """The tag of a core key "gggg,eeee"; None when the key is not one."""
    group, _, element = key.partition(",")
    try:
        return int(group, 16) << 16 | int(element, 16)
    except ValueError:
        return None


def creator_key(tag: int) -> str | None:
    """The core key of the reservation (gggg,00xx) of a private data element's block; None
    for a tag that is no private data element."""
    if not is_private(tag) or (tag & 0xFFFF) < 0x1000:
        return None
    return f"{tag >> 16:04x},00{(tag >> 8) & 0xFF:02x}"


def orthanc_content_path(path: Sequence[int]) -> str:
    """`(0x00540016, 0, 0x00181072)` -> "0054-0016/0/0018-1072", as the core's /content wants
    (the raw bytes of the value)."""
    return "/".join(
        f"{part >> 16:04x}-{part & 0xFFFF:04x}" if index % 2 == 0 else str(part)
        for index, part in enumerate(path)
    )


def orthanc_text(entry: Any) -> str | None:
    """The text of one entry of the core's tags, full (`{"Type": "String", "Value": ...}`) or
    short (`?short`: the text itself); None for anything else."""
    if isinstance(entry, dict):
        entry = entry.get("Value") if entry.get("Type") == "String" else None
    return entry if isinstance(entry, str) else None


def orthanc_context(tags: Mapping[str, Any]) -> dict[str, Any]:
    """The VR-resolving context (see `dicom_tags.vr_of`) of a dataset in the core's full or
    short tag format."""
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


__all__ = [
    "creator_key",
    "orthanc_content_path",
    "orthanc_context",
    "orthanc_key",
    "orthanc_text",
    "tag_of_orthanc_key",
]
