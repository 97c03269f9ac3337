"""Pixel work for rendered images: LUTs, windowing and colour to 8 bits (the header is read
in `header`, frames decoded in `pixel_data`, the output image made in `image_output`).

Pure NumPy / pydicom: no Orthanc here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.pixels import convert_color_space

from ..errors import bad_request
from .header import PixelFormat, Tags, first_item, tag_number, tag_text

WINDOW_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
# `window=c,w,linear-exact` of Retrieve Rendered, mapped as the official plugin does.
QUERY_LINEAR_EXACT = "QUERY_LINEAR_EXACT"

# A value table pays off when the frame has this many times more pixels than table entries.
TABLE_GAIN = 4

SHARED_GROUPS = "5200,9229"
PER_FRAME_GROUPS = "5200,9230"
FRAME_VOI = "0028,9132"
PIXEL_TRANSFORMATION = "0028,9145"
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
    groups.append(first_item(tags, SHARED_GROUPS))
    return groups


def _frame_value(tags: Tags, frame: int, macro: str, key: str) -> float | None:
    """A number from a functional group macro of the frame, else from the top level."""
    for group in frame_groups(tags, frame):
        value = tag_number(first_item(group, macro), key)
        if value is not None:
            return value
    return tag_number(tags, key)


def image_window(tags: Tags, frame: int) -> Window | None:
    """The image's own first VOI window for the frame (Enhanced objects store it per frame)."""
    for item in [*(first_item(g, FRAME_VOI) for g in frame_groups(tags, frame)), tags]:
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
