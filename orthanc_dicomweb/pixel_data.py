"""Frames of stored pixel data: cut from a Pixel Data value, and RLE Lossless decoded.

Pure (pydicom, NumPy, pylibjpeg-rle): no Orthanc here. Shared by Retrieve Frames and the
rendering of images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import rle
from pydicom.encaps import get_frame

if TYPE_CHECKING:
    from .rendering import PixelFormat


def encapsulated_frames(pixel_data: bytes, numbers: Sequence[int], count: int) -> list[bytes]:
    """The 1-based frames of an encapsulated Pixel Data value, as stored; ValueError if the
    fragments cannot be told apart."""
    return [get_frame(pixel_data, number - 1, number_of_frames=count) for number in numbers]


def native_frames(pixel_data: bytes, numbers: Sequence[int], frame_size: int) -> list[bytes]:
    """The 1-based frames of an uncompressed Pixel Data value of byte-aligned frames."""
    return [pixel_data[(number - 1) * frame_size : number * frame_size] for number in numbers]


def decode_rle(encoded: bytes, fmt: PixelFormat) -> bytearray:
    """One RLE Lossless frame as little-endian samples, one colour plane after the other (RLE
    keeps each sample in its own segment); ValueError when invalid or of another layout."""
    if fmt.bits_allocated not in (8, 16, 32):
        raise ValueError(f"RLE of {fmt.bits_allocated}-bit pixels")
    return rle.decode_pixel_data(
        encoded,
        version=2,
        rows=fmt.rows,
        columns=fmt.columns,
        samples_per_pixel=fmt.samples,
        bits_allocated=fmt.bits_allocated,
        byteorder="<",
    )


def rle_to_native(encoded: bytes, fmt: PixelFormat) -> bytes:
    """One RLE Lossless frame as the native frame Explicit VR Little Endian would hold: colour
    pixel by pixel (PlanarConfiguration 0), as DCMTK's own decoder writes it."""
    planes = decode_rle(encoded, fmt)
    if fmt.samples == 1:
        return bytes(planes)
    dtype = np.dtype(f"<u{fmt.bits_allocated // 8}")
    samples = np.frombuffer(planes, dtype).reshape(fmt.samples, fmt.rows * fmt.columns)
    return samples.T.tobytes()
