"""Transfer syntaxes: their media types, and what a WADO-RS `Accept` header asks to receive.

Two negotiations live here, both pure: which transfer syntax whole instances are sent in
(`instance_target`, PS3.18 8.7.3.5.1) and which media type and transfer syntax frames are sent
in (`frame_target`, PS3.18 8.7.3.5.2 and Table 8.7.3-5). Ranges are tried best q first; the
first one that can be served wins; none gives 406.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..errors import not_acceptable
from ..http.negotiation import MediaType, matches, multipart_type, parse_accept, transfer_syntax

ANY = "*"
DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"

IMPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_BIG_ENDIAN = "1.2.840.10008.1.2.2"
RLE = "1.2.840.10008.1.2.5"

NATIVE = frozenset(
    {IMPLICIT_LITTLE_ENDIAN, EXPLICIT_LITTLE_ENDIAN, DEFLATED_LITTLE_ENDIAN, EXPLICIT_BIG_ENDIAN}
)
"""Syntaxes whose pixel data is not encapsulated (frames are plain pixel bytes)."""

FRAME_MEDIA_TYPES: dict[str, str] = {
    IMPLICIT_LITTLE_ENDIAN: OCTET_STREAM,
    EXPLICIT_LITTLE_ENDIAN: OCTET_STREAM,
    DEFLATED_LITTLE_ENDIAN: OCTET_STREAM,
    EXPLICIT_BIG_ENDIAN: OCTET_STREAM,
    RLE: "image/x-dicom-rle",
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.4.100": "video/mpeg2",
    "1.2.840.10008.1.2.4.101": "video/mpeg2",
    "1.2.840.10008.1.2.4.102": "video/mp4",
    "1.2.840.10008.1.2.4.103": "video/mp4",
    "1.2.840.10008.1.2.4.104": "video/mp4",
    "1.2.840.10008.1.2.4.105": "video/mp4",
    "1.2.840.10008.1.2.4.106": "video/mp4",
    "1.2.840.10008.1.2.4.107": "video/h265",
    "1.2.840.10008.1.2.4.108": "video/h265",
}
"""The media type of one frame in each transfer syntax (PS3.18 Table 8.7.3-5)."""

DEFAULT_SYNTAX_OF_MEDIA_TYPE: dict[str, str] = {
    OCTET_STREAM: EXPLICIT_LITTLE_ENDIAN,
    "image/x-dicom-rle": RLE,
    "image/jpeg": "1.2.840.10008.1.2.4.70",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/jphc": "1.2.840.10008.1.2.4.201",
    "video/mpeg2": "1.2.840.10008.1.2.4.100",
    "video/mp4": "1.2.840.10008.1.2.4.102",
    "video/h265": "1.2.840.10008.1.2.4.107",
}

# Names clients use besides the ones above (older drafts of PS3.18, or lower case).
MEDIA_TYPE_ALIASES = {
    "image/dicom-rle": "image/x-dicom-rle",
    "image/x-jls": "image/jls",
}

UNSAFE_TO_WRITE = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
"""JPEG-LS: DCMTK's encoder in Orthanc 1.10.1 corrupts the heap on small images (SIGSEGV or
abort, sometimes on a later request) with no boundary the header can tell; never asked for."""

TRANSCODABLE = frozenset(
    {
        IMPLICIT_LITTLE_ENDIAN,
        EXPLICIT_LITTLE_ENDIAN,
        EXPLICIT_BIG_ENDIAN,
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
    }
)
"""Syntaxes the core of Orthanc 1.10.1 (DCMTK codecs) can write safely; measured, see the
README (JPEG-LS, `UNSAFE_TO_WRITE`, it can write too, but crashes doing it)."""


def is_known(uid: str) -> bool:
    return uid in FRAME_MEDIA_TYPES


def frame_media_type(uid: str) -> str:
    """The media type of a frame in this syntax (octet-stream for unknown, native ones)."""
    return FRAME_MEDIA_TYPES.get(uid, OCTET_STREAM)


def canonical_media_type(essence: str) -> str:
    lowered = essence.lower()
    return MEDIA_TYPE_ALIASES.get(lowered, lowered)


# --- Instances ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceTarget:
    """The transfer syntax instances are sent in; None keeps each stored syntax."""

    syntax: str | None

    def needs_transcoding(self, stored: str | None) -> bool:
        return self.syntax is not None and stored != self.syntax


def instance_targets(accept: str | None) -> list[InstanceTarget]:
    """What `Accept` allows for whole instances, best first; 406 if nothing."""
    ranges = parse_accept(accept)
    targets = _distinct(_instance_target_of(media) for media in ranges if media.q > 0)
    if not targets:
        raise _refusal(ranges, 'multipart/related; type="application/dicom"; transfer-syntax=...')
    return targets


def _instance_target_of(media: MediaType) -> InstanceTarget | None:
    if media.essence == "*/*":
        return InstanceTarget(EXPLICIT_LITTLE_ENDIAN)
    if media.essence != "multipart/related":
        return None
    part_type = multipart_type(media) or DICOM
    if part_type not in (DICOM, "*/*", "application/*", ANY):
        return None
    # No transfer-syntax parameter means Explicit VR Little Endian (PS3.18 8.7.3.5.1).
    syntax = transfer_syntax(media) or EXPLICIT_LITTLE_ENDIAN
    if syntax == ANY:
        return InstanceTarget(None)
    return InstanceTarget(syntax) if is_known(syntax) else None


# --- Frames ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameTarget:
    """How frames are sent: this media type, in this transfer syntax."""

    media_type: str
    syntax: str

    @property
    def part_content_type(self) -> str:
        return f"{self.media_type}; transfer-syntax={self.syntax}"


def frame_targets(accept: str | None, stored: str) -> list[FrameTarget]:
    """What `Accept` allows for the frames of an instance stored in `stored`, best first."""
    ranges = parse_accept(accept)
    targets = _distinct(
        target for media in ranges if media.q > 0 for target in _frame_targets_of(media, stored)
    )
    if not targets:
        raise _refusal(
            ranges, 'multipart/related; type="application/octet-stream" (or an image media type)'
        )
    return targets


def stored_frame_target(stored: str) -> FrameTarget:
    """Frames as stored; native pixel data is always delivered little endian."""
    if stored in NATIVE or not is_known(stored):
        return FrameTarget(OCTET_STREAM, EXPLICIT_LITTLE_ENDIAN)
    return FrameTarget(frame_media_type(stored), stored)


def _frame_targets_of(media: MediaType, stored: str) -> list[FrameTarget]:
    if media.essence == "*/*":
        # No preference (also no Accept at all): uncompressed, as the official plugin answers
        # (PS3.18 would allow the stored compressed media type; README, compatibility), else
        # as stored when the core cannot decode it (JPEG 2000 without GDCM).
        return [FrameTarget(OCTET_STREAM, EXPLICIT_LITTLE_ENDIAN), stored_frame_target(stored)]
    target = _frame_target_of(media, stored)
    return [] if target is None else [target]


def _frame_target_of(media: MediaType, stored: str) -> FrameTarget | None:
    if media.essence != "multipart/related":
        return None
    part = multipart_type(media) or OCTET_STREAM
    syntax = transfer_syntax(media)
    if part in ("*/*", ANY):
        return _any_media_type(syntax, stored)
    part = canonical_media_type(part)
    if part == OCTET_STREAM:
        return _octet_stream(syntax, stored)
    return _image_or_video(part, syntax, stored)


def _any_media_type(syntax: str | None, stored: str) -> FrameTarget | None:
    if syntax in (None, ANY):
        return stored_frame_target(stored)
    return FrameTarget(frame_media_type(syntax), syntax) if _frame_syntax_ok(syntax) else None


def _octet_stream(syntax: str | None, stored: str) -> FrameTarget | None:
    if syntax is None:
        return FrameTarget(OCTET_STREAM, EXPLICIT_LITTLE_ENDIAN)
    if syntax == ANY:
        # OHIF and dicomweb-client: "any syntax, as bytes"; the part says which one it is.
        return FrameTarget(OCTET_STREAM, stored_frame_target(stored).syntax)
    return FrameTarget(OCTET_STREAM, syntax) if _frame_syntax_ok(syntax) else None


def _image_or_video(part: str, syntax: str | None, stored: str) -> FrameTarget | None:
    type_, slash, subtype = part.partition("/")
    if not slash:
        return None  # `type="jpeg"`: not a media type
    range_ = MediaType(type_, subtype)
    if syntax in (None, ANY) and matches(range_, frame_media_type(stored)) and stored not in NATIVE:
        return stored_frame_target(stored)
    if syntax in (None, ANY):
        default = DEFAULT_SYNTAX_OF_MEDIA_TYPE.get(part.lower())
        return FrameTarget(frame_media_type(default), default) if default else None
    if is_known(syntax) and matches(range_, frame_media_type(syntax)):
        return FrameTarget(frame_media_type(syntax), syntax)
    return None


def _frame_syntax_ok(syntax: str) -> bool:
    # Big endian frames would need swapping back: nobody asks for them, so they are refused.
    return is_known(syntax) and syntax != EXPLICIT_BIG_ENDIAN


Target = TypeVar("Target")


def _distinct(targets: Iterable[Target | None]) -> list[Target]:
    return list(dict.fromkeys(target for target in targets if target is not None))


def _refusal(ranges: Sequence[MediaType], expected: str) -> Exception:
    asked = ", ".join(str(media) for media in ranges)
    return not_acceptable(f"Cannot answer any accepted media type ({asked}); use {expected}")


# --- The transfer syntax of a DICOM file -------------------------------------------------

_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})


def syntax_of_file(dicom: bytes | memoryview) -> str | None:
    """The Transfer Syntax UID (0002,0010) of a DICOM Part 10 file, read from its meta header."""
    view = memoryview(dicom)
    if bytes(view[128:132]) != b"DICM":
        return None
    position = 132
    # The meta group is always Explicit VR Little Endian (PS3.10 7.1).
    while position + 8 <= len(view):
        group, element = struct.unpack_from("<HH", view, position)
        if group != 0x0002:
            return None
        vr = bytes(view[position + 4 : position + 6])
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", view, position + 8)
            start = position + 12
        else:
            (length,) = struct.unpack_from("<H", view, position + 6)
            start = position + 8
        if element == 0x0010:
            return bytes(view[start : start + length]).decode("ascii").rstrip("\0 ")
        position = start + length
    return None
