"""Pixel work for rendered images: the header, decoding native frames, LUTs and windowing
(the output image is made in `image_output`).

Pure NumPy / pydicom: no Orthanc here. The image header comes as the core's
`/instances/{id}/tags?short` JSON ("gggg,eeee" keys, multiple values joined by backslashes,
sequences as lists of such objects, long binary values as null), or as a pydicom dataset seen
in that same shape through `DatasetTags`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from struct import calcsize, iter_unpack
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import convert_color_space

from ..errors import bad_request, not_found
from ..orthanc.tags import orthanc_key, tag_of_orthanc_key
from .pixel_data import decode_rle, encapsulated_frames
from .tags import dictionary_vr

Tags = Mapping[str, Any]

WINDOW_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
# `window=c,w,linear-exact` of Retrieve Rendered, mapped as the official plugin does.
QUERY_LINEAR_EXACT = "QUERY_LINEAR_EXACT"

# A value table pays off when the frame has this many times more pixels than table entries.
TABLE_GAIN = 4

PIXEL_DATA = "7fe0,0010"
SHARED_GROUPS = "5200,9229"
PER_FRAME_GROUPS = "5200,9230"
FRAME_VOI = "0028,9132"
PIXEL_TRANSFORMATION = "0028,9145"
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


def _first_item(tags: Tags, key: str) -> Tags:
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


def decode_rle_frame(pixel_data: bytes, frame: int, fmt: PixelFormat) -> np.ndarray:
    """One 1-based frame of encapsulated RLE Lossless pixel data, decoded to stored values;
    ValueError when the data is not valid RLE or of an unsupported layout."""
    [encoded] = encapsulated_frames(pixel_data, [frame], fmt.frames)
    # RLE keeps each sample in its own segment: colour comes out plane by plane.
    return decode_native_frame(decode_rle(encoded, fmt), replace(fmt, planar=fmt.samples > 1))


def decode_native_frame(raw: bytes | bytearray, fmt: PixelFormat) -> np.ndarray:
    """One uncompressed little-endian frame as (rows, columns) or (rows, columns, 3) values."""
    if len(raw) < fmt.frame_size:
        raise bad_request(f"Pixel data too short: {len(raw)} bytes for {fmt.frame_size}")
    if fmt.bits_allocated == 1:
        bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
        return bits[: fmt.rows * fmt.columns].reshape(fmt.rows, fmt.columns)
    if fmt.photometric == "YBR_FULL_422" and fmt.bits_allocated == 8:
        return _upsample_ybr_422(np.frombuffer(raw, np.uint8, fmt.frame_size), fmt)
    if fmt.bits_allocated not in (8, 16, 32):
        raise bad_request(f"Unsupported BitsAllocated: {fmt.bits_allocated}")
    dtype = np.dtype(f"<{'i' if fmt.signed else 'u'}{fmt.bits_allocated // 8}")
    values = np.frombuffer(raw, dtype, fmt.rows * fmt.columns * fmt.samples)
    values = _keep_stored_bits(values, fmt)
    if fmt.samples == 1:
        return values.reshape(fmt.rows, fmt.columns)
    if fmt.planar:
        return values.reshape(fmt.samples, fmt.rows, fmt.columns).transpose(1, 2, 0)
    return values.reshape(fmt.rows, fmt.columns, fmt.samples)


def _keep_stored_bits(values: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """Drop bits above BitsStored (old overlays live there) and sign-extend signed values."""
    unused = fmt.bits_allocated - fmt.bits_stored
    if unused <= 0:
        return values
    if fmt.signed:
        return (values << unused) >> unused
    return values & ((1 << fmt.bits_stored) - 1)


def _upsample_ybr_422(raw: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """YBR_FULL_422 (Y1 Y2 Cb Cr per pixel pair) as full YBR_FULL samples."""
    pairs = raw.reshape(fmt.rows, fmt.columns // 2, 4)
    ybr = np.empty((fmt.rows, fmt.columns, 3), np.uint8)
    ybr[:, 0::2, 0], ybr[:, 1::2, 0] = pairs[:, :, 0], pairs[:, :, 1]
    for channel in (1, 2):
        ybr[:, 0::2, channel] = ybr[:, 1::2, channel] = pairs[:, :, channel + 1]
    return ybr


# --- Grayscale pipeline: modality LUT, VOI, presentation ----------------------------------


@dataclass(frozen=True)
class Lut:
    """A Modality or VOI LUT: descriptor (entries, first mapped value, bits) and data."""

    first: int
    bits: int
    data: np.ndarray

    @classmethod
    def from_descriptor(cls, descriptor: Sequence[float], data: bytes) -> Lut:
        entries, first, bits = (int(v) for v in descriptor[:3])
        entries = entries or 65536
        # LUT Data holds 16-bit words, except some 8-bit LUTs packed one entry per byte.
        dtype = np.dtype("<u2") if len(data) >= entries * 2 else np.dtype(np.uint8)
        count = min(entries, len(data) // dtype.itemsize)
        if count == 0:
            raise bad_request("Empty LUT Data in the image")
        return cls(first, bits, np.frombuffer(data, dtype, count).astype(np.float32))

    def apply(self, values: np.ndarray) -> np.ndarray:
        index = np.clip(values.astype(np.int64) - self.first, 0, len(self.data) - 1)
        return self.data[index]


@dataclass(frozen=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2); `function` is LINEAR, LINEAR_EXACT, SIGMOID or
    QUERY_LINEAR_EXACT."""

    center: float
    width: float
    function: str = "LINEAR"

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Values mapped to [0, 255] as float32."""
        x = values.astype(np.float32, copy=False)
        c, w = self.center, self.width
        if self.function == "SIGMOID":
            with np.errstate(over="ignore"):  # exp overflows to inf far below c: 0, as it should
                return 255.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
        if self.function == "LINEAR_EXACT":
            return np.clip(((x - c) / w + 0.5) * 255.0, 0.0, 255.0)
        if self.function == QUERY_LINEAR_EXACT:
            # PS3.3 C.11.2.1.3.2 without its "+ 0.5", as the official plugin maps the query's
            # linear-exact and Orthanc's suite asserts (README, compatibility).
            return np.where(x > c + w / 2, 255.0, np.clip((x - c) / w * 255.0, 0.0, 255.0))
        return np.clip(((x - (c - 0.5)) / max(w - 1.0, 1e-6) + 0.5) * 255.0, 0.0, 255.0)


@dataclass(frozen=True)
class GrayscaleRendering:
    """How one grayscale frame becomes 8-bit presentation values."""

    slope: float = 1.0
    intercept: float = 0.0
    modality_lut: Lut | None = None
    window: Window | None = None
    voi_lut: Lut | None = None
    invert: bool = False
    core_arithmetic: bool = False
    """Window as Orthanc's core `/rendered` does (`window_like_core`), when there is a window
    and no Modality LUT."""

    def apply(self, stored: np.ndarray) -> np.ndarray:
        """8-bit presentation values; integer frames go through a table of their value range
        (a 512x512 CT then costs a table of a few thousand entries and one lookup per pixel
        instead of float arithmetic on every pixel)."""
        if stored.dtype.kind not in "iu" or not stored.size or not self._table_exact:
            return self._present(stored)
        low, high = int(stored.min()), int(stored.max())
        if (high - low + 1) * TABLE_GAIN > stored.size:
            return self._present(stored)
        table = self._present(np.arange(low, high + 1, dtype=stored.dtype))
        return np.take(table, _offsets(stored, low))

    @property
    def _table_exact(self) -> bool:
        """A table over [min, max] of the stored values gives the image's own min-max window
        unless a Modality LUT (not monotonic) maps values between them beyond its extremes."""
        return self.modality_lut is None or self.window is not None or self.voi_lut is not None

    def _present(self, stored: np.ndarray) -> np.ndarray:
        if self.core_arithmetic and self.window is not None and self.modality_lut is None:
            presented = window_like_core(stored, self.slope, self.intercept, self.window)
        else:
            presented = self._voi(self._modality(stored))
        if self.invert:
            presented = 255.0 - presented
        return np.rint(presented).astype(np.uint8)

    def _modality(self, stored: np.ndarray) -> np.ndarray:
        if self.modality_lut is not None:
            return self.modality_lut.apply(stored)
        if self.slope == 1.0 and self.intercept == 0.0:
            return stored
        return stored.astype(np.float32) * self.slope + self.intercept

    def _voi(self, values: np.ndarray) -> np.ndarray:
        if self.window is not None:
            return self.window.apply(values)
        if self.voi_lut is not None:
            return self.voi_lut.apply(values) * (255.0 / ((1 << self.voi_lut.bits) - 1))
        if values.dtype == np.uint8:
            return values.astype(np.float32)  # 8-bit images without VOI are shown as stored
        low, high = float(values.min()), float(values.max())
        return Window((low + high) / 2, max(high - low, 1e-6), "LINEAR_EXACT").apply(values)


def window_like_core(
    stored: np.ndarray, slope: float, intercept: float, window: Window
) -> np.ndarray:
    """8-bit values as Orthanc's core renders them (`/instances/{id}/rendered`, which the
    official plugin's WADO-URI answers): 255 (v - c + w/2) / w truncated, the rescale folded
    into one float32 affine map of the stored values, so that the results match to the bit."""
    f32 = np.float32
    scaling = f32(slope) * f32(255) / f32(window.width)
    offset = (f32(intercept) - f32(window.center) + f32(window.width) / f32(2)) * f32(255)
    offset /= f32(window.width)
    return np.floor(np.clip(offset + scaling * stored.astype(f32), f32(0), f32(255)))


def _offsets(stored: np.ndarray, low: int) -> np.ndarray:
    """`stored - low` as table indices. 8 and 16-bit values stay that wide (half the memory
    traffic of intp): wrapping unsigned subtraction is exact since the range fits the width."""
    if stored.dtype.itemsize > 2:
        return np.subtract(stored, low, dtype=np.intp)
    unsigned = stored.view(stored.dtype.str.replace("i", "u"))
    return unsigned - unsigned.dtype.type(low % (1 << (8 * stored.dtype.itemsize)))


def frame_groups(tags: Tags, frame: int) -> list[Tags]:
    """Functional group items for a 1-based frame: per-frame first, then shared, then top."""
    groups: list[Tags] = []
    per_frame = tags.get(PER_FRAME_GROUPS)
    if isinstance(per_frame, list) and 0 < frame <= len(per_frame):
        groups.append(per_frame[frame - 1])
    groups.append(_first_item(tags, SHARED_GROUPS))
    return groups


def _frame_value(tags: Tags, frame: int, macro: str, key: str) -> float | None:
    """A number from a functional group macro of the frame, else from the top level."""
    for group in frame_groups(tags, frame):
        value = tag_number(_first_item(group, macro), key)
        if value is not None:
            return value
    return tag_number(tags, key)


def image_window(tags: Tags, frame: int) -> Window | None:
    """The image's own first VOI window for the frame (Enhanced objects store it per frame)."""
    for item in [*(_first_item(g, FRAME_VOI) for g in frame_groups(tags, frame)), tags]:
        center, width = tag_number(item, "0028,1050"), tag_number(item, "0028,1051")
        if center is not None and width is not None and width > 0:
            function = (tag_text(item, "0028,1056") or "LINEAR").upper().replace("-", "_")
            return Window(center, width, function if function in WINDOW_FUNCTIONS else "LINEAR")
    return None


def grayscale_rendering(
    tags: Tags,
    frame: int,
    window: Window | None = None,
    modality_lut: Lut | None = None,
    voi_lut: Lut | None = None,
    core_arithmetic: bool = False,
) -> GrayscaleRendering:
    """The rendering a frame gets from its header, with an explicit window taking precedence."""
    return GrayscaleRendering(
        slope=_frame_value(tags, frame, PIXEL_TRANSFORMATION, "0028,1053") or 1.0,
        intercept=_frame_value(tags, frame, PIXEL_TRANSFORMATION, "0028,1052") or 0.0,
        modality_lut=modality_lut,
        window=window or image_window(tags, frame),
        voi_lut=voi_lut,
        invert=(tag_text(tags, "0028,0004") or "").upper() == "MONOCHROME1",
        core_arithmetic=core_arithmetic,
    )


def to_8bit_color(pixels: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """RGB uint8 from colour samples (YBR_FULL converted, more than 8 bits scaled down)."""
    if pixels.dtype != np.uint8:
        shift = max(fmt.bits_stored - 8, 0)
        pixels = (pixels.astype(np.uint32) >> shift).clip(0, 255).astype(np.uint8)
    if fmt.photometric in ("YBR_FULL", "YBR_FULL_422"):
        pixels = convert_color_space(pixels, "YBR_FULL", "RGB")
    return pixels
