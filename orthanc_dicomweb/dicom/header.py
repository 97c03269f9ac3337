"""The header of an instance as the pixel services read it: the core's
`/instances/{id}/tags?short` JSON ("gggg,eeee" keys, multiple values joined by backslashes,
sequences as lists of such objects, long binary values as null), or a pydicom dataset seen in
that same shape through `DatasetTags`; and the Image Pixel module it describes (`PixelFormat`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from struct import calcsize, iter_unpack
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..errors import not_found
from ..orthanc.tags import orthanc_key, tag_of_orthanc_key
from .tags import dictionary_vr

Tags = Mapping[str, Any]

PIXEL_DATA = "7fe0,0010"
# Every header key read by rendering, Retrieve Rendered and WADO-URI: a file is parsed for these
# only, which takes a third less time on a CT with many private tags (a unit test checks that
# every key used in the code is listed). Sequence items are always parsed whole.
HEADER_KEYS = frozenset(
    {
        "0008,0005",
        "0008,0016",
        "0008,0060",
        "0008,103e",
        "0010,0010",
        "0010,0020",
        "0010,0030",
        "0018,1063",
        "0020,000d",
        "0020,000e",
        "0028,0002",
        "0028,0004",
        "0028,0006",
        "0028,0008",
        "0028,0010",
        "0028,0011",
        "0028,0100",
        "0028,0101",
        "0028,0103",
        "0028,1050",
        "0028,1051",
        "0028,1052",
        "0028,1053",
        "0028,1056",
        "0028,2000",
        "0028,3000",
        "0028,3002",
        "0028,3006",
        "0028,3010",
        "0028,9132",
        "0028,9145",
        "0042,0011",
        "5200,9229",
        "5200,9230",
        "7fe0,0010",
    }
)


def tag_text(tags: Tags, key: str, default: str | None = None) -> str | None:
    """The first value of a string tag, stripped; `default` when absent or empty."""
    value = tags.get(key)
    if not isinstance(value, str) or not value.strip():
        return default
    return value.split("\\")[0].strip()


def tag_number(tags: Tags, key: str, default: float | None = None) -> float | None:
    text = tag_text(tags, key)
    try:
        return default if text is None else float(text)
    except ValueError:
        return default


def tag_int(tags: Tags, key: str, default: int) -> int:
    value = tag_number(tags, key)
    return default if value is None else int(value)


# Value representations whose stored bytes are the short JSON's text (ASCII by PS3.5 6.2), or
# binary numbers (struct formats).
ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})
NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}


def read_header(data: bytes) -> Dataset:
    """A DICOM file parsed for the `HEADER_KEYS` (pixel data included)."""
    tags = [tag for key in HEADER_KEYS if (tag := tag_of_orthanc_key(key)) is not None]
    return dcmread(io.BytesIO(data), specific_tags=tags)


def first_item(tags: Tags, key: str) -> Tags:
    value = tags.get(key)
    return value[0] if isinstance(value, list) and value and isinstance(value[0], Mapping) else {}


class DatasetTags(Mapping[str, Any]):
    """A pydicom dataset read as the core's `tags?short` JSON, one tag converted at a time
    (rendering reads some 20 tags: converting all of them would cost more than parsing)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._values:
            tag = tag_of_orthanc_key(key)
            if tag is None or tag not in self.dataset:
                raise KeyError(key)
            self._values[key] = _short_value(self.dataset, tag)
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        tag = tag_of_orthanc_key(key) if isinstance(key, str) else None
        return tag is not None and tag in self.dataset

    def __iter__(self) -> Iterator[str]:
        return map(orthanc_key, self.dataset.keys())

    def __len__(self) -> int:
        return len(self.dataset)


def _short_value(dataset: Dataset, tag: int) -> Any:
    """The value as `tags?short` has it: plain-ASCII and binary numbers read straight from the
    stored bytes (pydicom's conversion costs ~13 us a tag, this ~1 us), others via pydicom."""
    raw = dataset.get_item(tag)
    if isinstance(raw, RawDataElement) and raw.is_little_endian and raw.value is not None:
        vr = raw.VR or dictionary_vr(tag)  # implicit VR: the dictionary's (None: private)
        if vr in ASCII_VRS:
            return raw.value.decode("ascii", "replace").strip(" \0")
        if vr in NUMBER_FORMATS and len(raw.value) % calcsize(NUMBER_FORMATS[vr]) == 0:
            numbers = iter_unpack("<" + NUMBER_FORMATS[vr], raw.value)
            return "\\".join(str(number) for (number,) in numbers)
    return _converted_value(dataset[tag])


def _converted_value(element: DataElement) -> Any:
    value = element.value
    if element.VR == "SQ":
        return [DatasetTags(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)


def raw_bytes(dataset: Dataset, path: Sequence[str | int]) -> bytes:
    """The stored bytes of a value found by its path of "gggg,eeee" keys and item indices
    (e.g. sequence, 0, tag), as the core's `/content/...` gives them; 404 when absent."""
    *parents, last = path
    current: Any = dataset
    try:
        for step in parents:
            current = (
                current[step] if isinstance(step, int) else current[tag_of_orthanc_key(step)].value
            )
        element = current.get_item(tag_of_orthanc_key(str(last)))
    except (AttributeError, IndexError, KeyError, TypeError):
        element = None
    if element is None:
        raise not_found(f"No value at {'/'.join(map(str, path))} in the instance")
    return _element_bytes(element)


def _element_bytes(element: RawDataElement | DataElement) -> bytes:
    if isinstance(element, RawDataElement) or isinstance(element.value, bytes):
        return bytes(element.value or b"")
    # An element already converted to numbers (e.g. US LUT Data): back to little endian words.
    return np.asarray(element.value, "<u2").tobytes()


# --- What the pixels are --------------------------------------------------------------------


@dataclass(frozen=True)
class PixelFormat:
    """The Image Pixel module: how stored values are laid out and what they mean."""

    rows: int
    columns: int
    samples: int = 1
    bits_allocated: int = 16
    bits_stored: int = 16
    signed: bool = False
    photometric: str = "MONOCHROME2"
    planar: bool = False
    frames: int = 1

    @classmethod
    def from_tags(cls, tags: Tags) -> PixelFormat:
        bits_allocated = tag_int(tags, "0028,0100", 16)
        return cls(
            rows=tag_int(tags, "0028,0010", 0),
            columns=tag_int(tags, "0028,0011", 0),
            samples=tag_int(tags, "0028,0002", 1),
            bits_allocated=bits_allocated,
            bits_stored=tag_int(tags, "0028,0101", bits_allocated),
            signed=tag_int(tags, "0028,0103", 0) == 1,
            photometric=(tag_text(tags, "0028,0004") or "MONOCHROME2").upper(),
            planar=tag_int(tags, "0028,0006", 0) == 1,
            frames=max(1, tag_int(tags, "0028,0008", 1)),
        )

    @property
    def grayscale(self) -> bool:
        return self.photometric.startswith("MONOCHROME")

    @property
    def frame_size(self) -> int:
        """Bytes of one native frame (YBR_FULL_422 stores 2 bytes per pixel at 8 bits)."""
        if self.photometric == "YBR_FULL_422":
            return self.rows * self.columns * 2 * self.bits_allocated // 8
        return (self.rows * self.columns * self.samples * self.bits_allocated + 7) // 8


def has_pixels(tags: Tags) -> bool:
    return PIXEL_DATA in tags and tag_int(tags, "0028,0010", 0) > 0
