"""The element headers of Part 10 files, walked with `struct` and without recursion.

Values are skipped, never copied: this finds the file meta values, the encoding of the data set
(a deflated one is inflated, within a bound), the values of chosen top-level tags, and how deep
sequences nest (the core's DICOM parser recurses once per level and dies near fifty).
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache

from pydicom.datadict import dictionary_VR
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

DICM_OFFSET = 128
TRANSFER_SYNTAX_UID = 0x00020010
FILE_META_TAGS = (0x00020002, 0x00020003, TRANSFER_SYNTAX_UID)
PIXEL_DATA = 0x7FE00010
# A deflated data set is inflated in memory (to read it), up to this size.
MAX_INFLATED = 512 * 2**20


class NotDicom(ValueError):
    """No Part 10 preamble and prefix."""


class InflatedTooLarge(ValueError):
    """A deflated data set that inflates beyond MAX_INFLATED."""


def dataset_start(data: memoryview) -> tuple[dict[int, memoryview], memoryview, int, Encoding]:
    """The file meta values, the data set's bytes (inflated if deflated), where it starts in
    them and its encoding; struct.error or ValueError when the file is cut off or garbled."""
    if len(data) < DICM_OFFSET + 4 or data[DICM_OFFSET : DICM_OFFSET + 4] != b"DICM":
        raise NotDicom("Not a DICOM file: no 'DICM' prefix (PS3.10)")
    meta, position = scan(data, DICM_OFFSET + 4, _EXPLICIT_LITTLE, FILE_META_TAGS, 0x0002FFFF)
    syntax = uid_text(meta.get(TRANSFER_SYNTAX_UID)) or ExplicitVRLittleEndian
    if syntax == DeflatedExplicitVRLittleEndian:
        data, position = memoryview(_inflate(data[position:])), 0
    return meta, data, position, _detected(data, position, _ENCODINGS.get(syntax, _EXPLICIT_LITTLE))


def nesting_exceeds(data: memoryview, position: int, encoding: Encoding, limit: int) -> bool:
    """Whether sequences nest deeper than `limit` in the data set starting at `position`."""
    try:
        _walk(data, position, encoding, [], limit)
    except _TooDeep:
        return True
    return False


def uid_text(value: memoryview | None) -> str:
    return bytes(value).decode("ascii", "replace").rstrip(" \0") if value is not None else ""


def _inflate(data: memoryview) -> bytes:
    """A deflated data set, inflated up to MAX_INFLATED bytes: deflate shrinks zeros a
    thousandfold, so a 20 MB body would otherwise become 20 GB in memory."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    inflated = inflater.decompress(data, MAX_INFLATED)
    if inflater.unconsumed_tail:
        raise InflatedTooLarge(f"Deflated data set larger than {MAX_INFLATED >> 20} MB")
    return inflated


@dataclass(frozen=True)
class Encoding:
    """How element headers are laid out, with their `struct` formats compiled once."""

    explicit: bool
    order: str  # struct byte order: "<" or ">"

    @cached_property
    def explicit_header(self) -> struct.Struct:
        """Tag, VR and the 16-bit length of the short explicit VR header, in one unpack."""
        return struct.Struct(self.order + "HH2sH")

    @cached_property
    def implicit_header(self) -> struct.Struct:
        """Tag and 32-bit length: implicit VR elements and item/sequence delimiters."""
        return struct.Struct(self.order + "HHI")

    @cached_property
    def long_length(self) -> struct.Struct:
        return struct.Struct(self.order + "I")


# One instance of each, so that their compiled formats are shared.
_EACH_ENCODING = {
    (explicit, order): Encoding(explicit, order) for explicit in (True, False) for order in "<>"
}
_EXPLICIT_LITTLE = _EACH_ENCODING[True, "<"]
_ENCODINGS: dict[str, Encoding] = {
    ImplicitVRLittleEndian: _EACH_ENCODING[False, "<"],
    ExplicitVRBigEndian: _EACH_ENCODING[True, ">"],
}
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})
_UNDEFINED = 0xFFFFFFFF
_ITEM_DELIMITER, _SEQUENCE_DELIMITER = 0xFFFEE00D, 0xFFFEE0DD


def _detected(data: memoryview, position: int, declared: Encoding) -> Encoding:
    """The encoding the dataset really uses: files claiming explicit VR yet implicit exist."""
    vr = bytes(data[position + 4 : position + 6])
    explicit = len(vr) == 2 and vr.isalpha() and vr.isupper()
    return _EACH_ENCODING[explicit, declared.order]


def scan(
    data: memoryview, position: int, encoding: Encoding, wanted: Iterable[int], last: int
) -> tuple[dict[int, memoryview], int]:
    """Values of the `wanted` top-level tags up to tag `last`, and where the scan stopped."""
    wanted = frozenset(wanted)
    values: dict[int, memoryview] = {}
    end = len(data)
    while position + 8 <= end:
        tag, vr, length, header = _element_header(data, position, encoding)
        if tag > last:
            break
        position += header
        if length == _UNDEFINED:
            position = _skip_undefined(data, position, encoding, vr)
            continue
        if position + length > end:
            raise ValueError(f"value of ({tag >> 16:04X},{tag & 0xFFFF:04X}) is cut off")
        if tag in wanted:
            values[tag] = data[position : position + length]
        position += length
    return values, position


def _element_header(
    data: memoryview, position: int, encoding: Encoding
) -> tuple[int, bytes, int, int]:
    """(tag, VR or b"", value length, header size) of the element at `position`."""
    # One unpack for most elements: this loop runs a hundred times per stored instance.
    if encoding.explicit:
        group, element, vr, length = encoding.explicit_header.unpack_from(data, position)
        if group != 0xFFFE:  # delimiters have no VR in any syntax
            if vr in _LONG_VRS:
                (length,) = encoding.long_length.unpack_from(data, position + 8)
                return group << 16 | element, vr, length, 12
            return group << 16 | element, vr, length, 8
    group, element, length = encoding.implicit_header.unpack_from(data, position)
    return group << 16 | element, b"", length, 8


def _skip_undefined(data: memoryview, position: int, encoding: Encoding, vr: bytes) -> int:
    """Past a value of undefined length: items up to the sequence delimiter, however deep."""
    kind = _FRAGMENTS if vr in (b"OB", b"OW") else _SEQUENCE
    opened = [_open(kind, encoding, vr, _UNDEFINED, position)]
    return _walk(data, position, encoding, opened, sys.maxsize)


@dataclass(frozen=True)
class _Container:
    """A sequence, an item or encapsulated pixel data being walked, and where it ends."""

    kind: int
    encoding: Encoding  # of the elements inside
    end: int  # sys.maxsize while the end is a delimiter still to come


_SEQUENCE, _ITEM, _FRAGMENTS = range(3)
_ITEM_TAG = 0xFFFEE000


class _TooDeep(Exception):
    """Ends the walk once the answer is known."""


def _open(kind: int, encoding: Encoding, vr: bytes, length: int, position: int) -> _Container:
    # An undefined-length UN holds an implicit VR little endian sequence (PS3.5 6.2.2).
    if vr == b"UN":
        encoding = _ENCODINGS[ImplicitVRLittleEndian]
    return _Container(kind, encoding, sys.maxsize if length == _UNDEFINED else position + length)


def _walk(
    data: memoryview,
    position: int,
    encoding: Encoding,
    open_: list[_Container],
    limit: int,
) -> int:
    """Walk element headers, without recursion, until the containers in `open_` are closed
    (or, if it starts empty, to the end of the data); _TooDeep beyond `limit` sequences."""
    whole_dataset = not open_
    depth = sum(container.kind == _SEQUENCE for container in open_)
    while True:
        while open_ and open_[-1].end <= position:  # containers of defined length
            depth -= open_.pop().kind == _SEQUENCE
        if not open_ and not whole_dataset:
            return position
        if position + 8 > len(data):
            if open_:
                raise ValueError("sequence is cut off")
            return position
        inside = open_[-1] if open_ else None
        tag, vr, length, header = _element_header(
            data, position, inside.encoding if inside else encoding
        )
        position += header
        if tag in (_ITEM_DELIMITER, _SEQUENCE_DELIMITER):
            if open_:
                depth -= open_.pop().kind == _SEQUENCE
        elif inside is not None and inside.kind == _FRAGMENTS:
            position += length  # a fragment of encapsulated pixel data: opaque bytes
        elif tag == _ITEM_TAG:
            open_.append(
                _open(_ITEM, inside.encoding if inside else encoding, b"", length, position)
            )
        elif _is_sequence(tag, vr, length):
            depth += 1
            if depth > limit:
                raise _TooDeep
            open_.append(
                _open(_SEQUENCE, inside.encoding if inside else encoding, vr, length, position)
            )
        elif length == _UNDEFINED:  # encapsulated pixel data
            open_.append(
                _open(_FRAGMENTS, inside.encoding if inside else encoding, vr, length, position)
            )
        else:
            position += length
        if position > len(data):
            raise ValueError("value is cut off")


def _is_sequence(tag: int, vr: bytes, length: int) -> bool:
    if vr:
        return vr == b"SQ" or (vr == b"UN" and length == _UNDEFINED)
    # Implicit VR: only the dictionary tells; an undefined length is a sequence but in pixel data.
    if length == _UNDEFINED:
        return tag != PIXEL_DATA
    return _dictionary_vr(tag) == "SQ"


@lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return ""


__all__ = [
    "DICM_OFFSET",
    "MAX_INFLATED",
    "Encoding",
    "InflatedTooLarge",
    "NotDicom",
    "dataset_start",
    "nesting_exceeds",
    "scan",
    "uid_text",
]
