"""Frames of stored pixel data: cut from a Pixel Data value, RLE Lossless decoded, and other
compressed frames decoded by pydicom's decoders.

Pure (pydicom, NumPy, pylibjpeg-rle, Pillow): no Orthanc here. Shared by Retrieve Frames and
the rendering of images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import numpy as np
import rle
from pydicom.encaps import encapsulate, get_frame
from pydicom.pixels import get_decoder

from ..errors import bad_request
from .header import PixelFormat


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
    # version=2 gives a bytearray; pylibjpeg-rle types the result of both versions as one.
    return cast(
        bytearray,
        rle.decode_pixel_data(
            encoded,
            version=2,
            rows=fmt.rows,
            columns=fmt.columns,
            samples_per_pixel=fmt.samples,
            bits_allocated=fmt.bits_allocated,
            byteorder="<",
        ),
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


def decode_frame(encoded: bytes, fmt: PixelFormat, syntax: str) -> np.ndarray:
    """One compressed frame as (rows, columns[, samples]) stored values, colour as RGB, by the
    decoders pydicom has here (Pillow's OpenJPEG for JPEG 2000: the core of Orthanc 1.10.1
    cannot decode it without GDCM); signedness follows PixelRepresentation even where the code
    stream says otherwise. ValueError when no decoder can."""
    # Any values: pydicom annotates `**kwargs: DecodeOptions` (each keyword as the whole
    # TypedDict) where `Unpack[DecodeOptions]` is meant.
    options: dict[str, Any] = {
        "rows": fmt.rows,
        "columns": fmt.columns,
        "samples_per_pixel": fmt.samples,
        "bits_allocated": fmt.bits_allocated,
        "bits_stored": fmt.bits_stored,
        "pixel_representation": int(fmt.signed),
        "photometric_interpretation": fmt.photometric,
        "planar_configuration": int(fmt.planar),
        "number_of_frames": 1,
    }
    try:
        array, _ = get_decoder(syntax).as_array(encapsulate([encoded]), **options)
    except (NotImplementedError, RuntimeError, ValueError) as error:
        raise ValueError(f"Cannot decode a frame in transfer syntax {syntax}: {error}") from None
    return array


def decode_to_native(encoded: bytes, fmt: PixelFormat, syntax: str) -> bytes:
    """One compressed frame as the native frame Explicit VR Little Endian would hold (colour
    pixel by pixel, as RGB); ValueError when no decoder can."""
    array = decode_frame(encoded, fmt, syntax)
    return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


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
