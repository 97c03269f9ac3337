"""Pixel work without Orthanc: decoding, LUTs, windowing, geometry, encoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from orthanc_dicomweb import rendering
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.rendering import (
    GrayscaleRendering,
    Lut,
    PixelFormat,
    Region,
    RenderOptions,
    Viewport,
    Window,
)


def test_native_signed_16_bit_keeps_stored_bits_and_sign() -> None:
    fmt = PixelFormat(rows=1, columns=3, bits_allocated=16, bits_stored=12, signed=True)
    # 12-bit two's complement values with unrelated bits (old overlays) above bit 11
    with_overlay_bits = np.array([0x0800 | 0x5000, 0x07FF | 0xA000, 0x0FFF], "<u2").tobytes()
    assert rendering.decode_native_frame(with_overlay_bits, fmt).tolist() == [[-2048, 2047, -1]]


def test_native_16_bit_and_planar_rgb() -> None:
    fmt = PixelFormat(rows=1, columns=2, bits_allocated=16, bits_stored=16)
    assert rendering.decode_native_frame(b"\x01\x00\x00\x02", fmt).tolist() == [[1, 512]]
    planar = PixelFormat(1, 2, samples=3, bits_allocated=8, bits_stored=8, planar=True)
    decoded = rendering.decode_native_frame(bytes([1, 2, 3, 4, 5, 6]), planar)
    assert decoded.tolist() == [[[1, 3, 5], [2, 4, 6]]]


def test_ybr_full_422_is_upsampled_then_converted_to_rgb() -> None:
    fmt = PixelFormat(1, 2, samples=3, bits_allocated=8, bits_stored=8, photometric="YBR_FULL_422")
    ybr = rendering.decode_native_frame(bytes([76, 76, 85, 255]), fmt)
    assert ybr.tolist() == [[[76, 85, 255], [76, 85, 255]]]
    rgb = rendering.to_8bit_color(ybr, fmt)
    assert abs(int(rgb[0, 0, 0]) - 255) <= 2 and rgb[0, 0, 1] <= 2  # pure red


def test_short_pixel_data_is_a_400() -> None:
    with pytest.raises(HttpError) as error:
        rendering.decode_native_frame(b"\0", PixelFormat(2, 2))
    assert error.value.status == 400


@pytest.mark.parametrize(
    ("function", "x", "expected"),
    [
        ("LINEAR", -1000.0, 0),
        ("LINEAR", 40.0, 128),
        ("LINEAR", 1000.0, 255),
        ("LINEAR_EXACT", -160.0, 0),
        ("LINEAR_EXACT", 140.0, 191),
        ("SIGMOID", 40.0, 128),
        ("SIGMOID", 240.0, 225),
    ],
)
def test_window_functions_follow_ps3_3(function: str, x: float, expected: int) -> None:
    value = Window(40.0, 400.0, function).apply(np.array([x]))[0]
    assert abs(value - expected) <= 1


def test_modality_rescale_then_window_then_monochrome1_inversion() -> None:
    rendering_ = GrayscaleRendering(
        slope=2.0, intercept=-1000.0, window=Window(0, 200, "LINEAR_EXACT")
    )
    assert rendering_.apply(np.array([450, 500, 550])).tolist() == [0, 128, 255]
    inverted = GrayscaleRendering(window=Window(128, 256, "LINEAR_EXACT"), invert=True)
    assert inverted.apply(np.array([0, 256])).tolist() == [255, 0]


def test_without_voi_8_bit_is_shown_as_stored_and_16_bit_spans_min_to_max() -> None:
    assert GrayscaleRendering().apply(np.array([3, 200], np.uint8)).tolist() == [3, 200]
    assert GrayscaleRendering().apply(np.array([100, 300], np.int16)).tolist() == [0, 255]


def test_voi_and_modality_luts() -> None:
    lut = Lut.from_descriptor([4, 10, 8], np.array([0, 85, 170, 255], "<u2").tobytes())
    assert lut.apply(np.array([5, 10, 12, 99])).tolist() == [0, 0, 170, 255]
    assert GrayscaleRendering(voi_lut=lut).apply(np.array([11])).tolist() == [85]


def test_per_frame_functional_groups_win_over_shared_and_top_level() -> None:
    voi = "0028,9132"
    tags = {
        "0028,1050": "0",
        "0028,1051": "10",
        "5200,9229": [{voi: [{"0028,1050": "100", "0028,1051": "50"}]}],
        "5200,9230": [{}, {voi: [{"0028,1050": "7\\8", "0028,1051": "3\\4"}]}],
        "0028,9145": [],
    }
    assert rendering.image_window(tags, 1) == Window(100, 50)
    assert rendering.image_window(tags, 2) == Window(7, 3)
    assert rendering.image_window({"0028,1050": "0", "0028,1051": "10"}, 1) == Window(0, 10)


def test_grayscale_rendering_from_tags() -> None:
    tags = {"0028,1052": "-1024", "0028,1053": "1", "0028,0004": "MONOCHROME1"}
    result = rendering.grayscale_rendering(tags, 1, Window(0, 10, "SIGMOID"))
    assert (result.intercept, result.slope, result.invert) == (-1024.0, 1.0, True)
    assert result.window == Window(0, 10, "SIGMOID")


def _image(width: int, height: int) -> Image.Image:
    values = np.arange(width * height, dtype=np.uint8).reshape(height, width)
    return Image.fromarray(values, "L")


def test_viewport_scales_to_fit_keeping_the_aspect_ratio() -> None:
    image = rendering.apply_geometry(_image(100, 50), RenderOptions(viewport=Viewport(40, 40)))
    assert image.size == (40, 20)


def test_viewport_region_crops_and_negative_width_flips() -> None:
    source = _image(8, 4)
    options = RenderOptions(viewport=Viewport(4, 4, sx=4, sy=0, sw=-4, sh=4))
    region = np.asarray(rendering.apply_geometry(source, options))
    assert region.tolist() == np.asarray(source)[:, 3::-1].tolist()


def test_viewport_region_outside_the_image_is_a_400() -> None:
    with pytest.raises(HttpError):
        rendering.apply_geometry(_image(8, 8), RenderOptions(viewport=Viewport(4, 4, 20, 20, 4, 4)))


def test_wado_region_and_fit_box() -> None:
    options = RenderOptions(region=Region(0.5, 0.0, 1.0, 0.5), fit=(2, 100))
    assert rendering.apply_geometry(_image(8, 8), options).size == (2, 2)
    small = RenderOptions(fit=(128, 128), upscale=False)
    assert rendering.apply_geometry(_image(8, 4), small).size == (8, 4)


def test_annotations_change_pixels_in_the_corner_only() -> None:
    image = Image.new("L", (200, 100), 0)
    burnt = np.asarray(rendering.burn_annotations(image, ["DOE John"]))
    assert burnt[:20, :80].max() >= 200 and burnt[60:, 120:].max() == 0


@pytest.mark.parametrize("media_type", ["image/jpeg", "image/png", "image/gif"])
def test_encode_each_media_type(media_type: str) -> None:
    frames = [_image(16, 8), ImageOps.invert(_image(16, 8))]
    data = rendering.encode(frames, media_type, 80)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == media_type.split("/")[1].upper()
    assert getattr(decoded, "n_frames", 1) == (2 if media_type == "image/gif" else 1)


def test_png_is_lossless_and_carries_an_icc_profile() -> None:
    source = _image(16, 8).convert("RGB")
    profile = rendering.srgb_profile()
    decoded = Image.open(io.BytesIO(rendering.encode([source], "image/png", icc_profile=profile)))
    assert np.array_equal(np.asarray(decoded), np.asarray(source))
    assert decoded.info["icc_profile"] == profile


def test_srgb_conversion_keeps_an_srgb_image_nearly_unchanged() -> None:
    source = _image(16, 8).convert("RGB")
    converted = rendering.to_srgb(source, rendering.srgb_profile())
    assert np.abs(np.asarray(converted, int) - np.asarray(source, int)).max() <= 2


def test_icon_has_the_asked_size() -> None:
    assert rendering.icon("PDF", 64).size == (64, 64)
