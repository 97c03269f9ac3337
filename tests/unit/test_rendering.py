"""Pixel work without Orthanc: decoding, LUTs, windowing, geometry, encoding."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.dicom import header, image_output, pixel_data, rendering
from orthanc_dicomweb.dicom.header import PixelFormat
from orthanc_dicomweb.dicom.image_output import Region, RenderOptions, Viewport
from orthanc_dicomweb.dicom.rendering import GrayscaleRendering, Lut, Window
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.orthanc import stored_instances
from orthanc_dicomweb.services.rendered import Renderer
from tests.unit.fakes import FakeCore, file_info


def test_native_signed_16_bit_keeps_stored_bits_and_sign() -> None:
    fmt = PixelFormat(rows=1, columns=3, bits_allocated=16, bits_stored=12, signed=True)
    # 12-bit two's complement values with unrelated bits (old overlays) above bit 11
    with_overlay_bits = np.array([0x0800 | 0x5000, 0x07FF | 0xA000, 0x0FFF], "<u2").tobytes()
    assert pixel_data.decode_native_frame(with_overlay_bits, fmt).tolist() == [[-2048, 2047, -1]]


def test_native_16_bit_and_planar_rgb() -> None:
    fmt = PixelFormat(rows=1, columns=2, bits_allocated=16, bits_stored=16)
    assert pixel_data.decode_native_frame(b"\x01\x00\x00\x02", fmt).tolist() == [[1, 512]]
    planar = PixelFormat(1, 2, samples=3, bits_allocated=8, bits_stored=8, planar=True)
    decoded = pixel_data.decode_native_frame(bytes([1, 2, 3, 4, 5, 6]), planar)
    assert decoded.tolist() == [[[1, 3, 5], [2, 4, 6]]]


def test_ybr_full_422_is_upsampled_then_converted_to_rgb() -> None:
    fmt = PixelFormat(1, 2, samples=3, bits_allocated=8, bits_stored=8, photometric="YBR_FULL_422")
    ybr = pixel_data.decode_native_frame(bytes([76, 76, 85, 255]), fmt)
    assert ybr.tolist() == [[[76, 85, 255], [76, 85, 255]]]
    rgb = rendering.to_8bit_color(ybr, fmt)
    assert abs(int(rgb[0, 0, 0]) - 255) <= 2 and rgb[0, 0, 1] <= 2  # pure red


def test_short_pixel_data_is_a_400() -> None:
    with pytest.raises(HttpError) as error:
        pixel_data.decode_native_frame(b"\0", PixelFormat(2, 2))
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


@pytest.mark.parametrize(
    ("center", "width", "x", "expected"),
    [(0, 256, 0, 0), (0, 256, 16, 16), (0, 64, 32, 128), (0, 64, 48, 255), (40, 32, 32, 0)],
)
def test_query_linear_exact_maps_as_the_official_plugin(
    center: float, width: float, x: float, expected: int
) -> None:
    window = Window(center, width, rendering.QUERY_LINEAR_EXACT)
    assert round(float(window.apply(np.array([x]))[0])) == expected


def test_core_arithmetic_windows_like_orthancs_core() -> None:
    # CT stored values, slope 1, intercept -1024, window 200/800: stored 1624 is 254.99998 in
    # the core's float32 arithmetic, hence 254 (the plain formula gives exactly 255).
    stored = np.array([0, 824, 1024, 1224, 1624, 2000], np.uint16)
    core = GrayscaleRendering(intercept=-1024.0, window=Window(200, 800), core_arithmetic=True)
    assert core.apply(stored).tolist() == [0, 0, 63, 127, 254, 255]
    assert GrayscaleRendering(intercept=-1024.0, window=Window(200, 800)).apply(stored)[4] == 255


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
    image = image_output.apply_geometry(_image(100, 50), RenderOptions(viewport=Viewport(40, 40)))
    assert image.size == (40, 20)


def test_viewport_region_crops_and_negative_width_flips() -> None:
    source = _image(8, 4)
    options = RenderOptions(viewport=Viewport(4, 4, sx=4, sy=0, sw=-4, sh=4))
    region = np.asarray(image_output.apply_geometry(source, options))
    assert region.tolist() == np.asarray(source)[:, 3::-1].tolist()


def test_viewport_region_outside_the_image_is_a_400() -> None:
    with pytest.raises(HttpError):
        image_output.apply_geometry(
            _image(8, 8), RenderOptions(viewport=Viewport(4, 4, 20, 20, 4, 4))
        )


def test_wado_region_and_fit_box() -> None:
    options = RenderOptions(region=Region(0.5, 0.0, 1.0, 0.5), fit=(2, 100))
    assert image_output.apply_geometry(_image(8, 8), options).size == (2, 2)
    small = RenderOptions(fit=(128, 128), upscale=False)
    assert image_output.apply_geometry(_image(8, 4), small).size == (8, 4)


def test_annotations_change_pixels_in_the_corner_only() -> None:
    image = Image.new("L", (200, 100), 0)
    burnt = np.asarray(image_output.burn_annotations(image, ["DOE John"]))
    assert burnt[:20, :80].max() >= 200 and burnt[60:, 120:].max() == 0


@pytest.mark.parametrize("media_type", ["image/jpeg", "image/png", "image/gif"])
def test_encode_each_media_type(media_type: str) -> None:
    frames = [_image(16, 8), ImageOps.invert(_image(16, 8))]
    data = image_output.encode(frames, media_type, 80)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == media_type.split("/")[1].upper()
    assert getattr(decoded, "n_frames", 1) == (2 if media_type == "image/gif" else 1)


def test_png_is_lossless_and_carries_an_icc_profile() -> None:
    source = _image(16, 8).convert("RGB")
    profile = image_output.srgb_profile()
    decoded = Image.open(
        io.BytesIO(image_output.encode([source], "image/png", icc_profile=profile))
    )
    assert np.array_equal(np.asarray(decoded), np.asarray(source))
    assert decoded.info["icc_profile"] == profile


def test_srgb_conversion_keeps_an_srgb_image_nearly_unchanged() -> None:
    source = _image(16, 8).convert("RGB")
    converted = image_output.to_srgb(source, image_output.srgb_profile())
    assert np.abs(np.asarray(converted, int) - np.asarray(source, int)).max() <= 2


def test_icon_has_the_asked_size() -> None:
    assert image_output.icon("PDF", 64).size == (64, 64)


# --- Speed paths: value tables, the header read from the file, RLE decoded in the plugin ----


@pytest.mark.parametrize(
    ("dtype", "low", "high"),
    [("<i2", -2000, 3000), (">i2", -2000, 3000), ("<u2", 30000, 65535), ("u1", 0, 255),
     ("i1", -128, 127), ("<i4", -5000, 5000), ("<i2", -32768, 32767)],
)  # fmt: skip
def test_value_table_gives_the_same_pixels_as_per_pixel_arithmetic(
    dtype: str, low: int, high: int
) -> None:
    values = np.random.default_rng(1).integers(low, high + 1, (200, 200)).astype(dtype)
    for rendering_ in (
        GrayscaleRendering(slope=2.0, intercept=-1000.0, window=Window(40, 400)),
        GrayscaleRendering(),
        GrayscaleRendering(window=Window(0, 100, "SIGMOID"), invert=True),
        GrayscaleRendering(voi_lut=Lut(-100, 8, np.linspace(0, 255, 300, dtype=np.float32))),
    ):
        assert np.array_equal(rendering_.apply(values), rendering_._present(values))


def _dataset(**values) -> Dataset:
    dataset = Dataset()
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    return dataset


def _stored(dataset: Dataset, syntax: str) -> bytes:
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    dataset.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    dataset.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, "1.2.840.10008.1.2.2"]
)
def test_dataset_tags_read_like_the_cores_short_json(syntax: str) -> None:
    voi = _dataset(WindowCenter="40", WindowWidth="400")
    source = _dataset(
        Rows=2, Columns=3, BitsAllocated=16, PixelRepresentation=0,
        WindowCenter=["40", "80"], RescaleIntercept="-1024",
        PatientName="Müller^Jürgen", SpecificCharacterSet="ISO_IR 100",
        PhotometricInterpretation="MONOCHROME2", ImagePositionPatient=[1, 2.5, -3],
        SharedFunctionalGroupsSequence=[_dataset(FrameVOILUTSequence=[voi])],
        PixelData=b"\0" * 12,
    )  # fmt: skip
    source["PixelData"].VR = "OW"
    tags = header.DatasetTags(header.read_header(_stored(source, syntax)))
    assert tags["0028,0010"] == "2" and tags["0028,1050"] == "40\\80"
    assert tags["0028,1052"] == "-1024" and tags["0010,0010"] == "Müller^Jürgen"
    assert header.tag_text(tags, "0028,0004") == "MONOCHROME2"
    assert rendering.image_window(tags, 1) == Window(40, 400)  # shared functional groups
    assert "7fe0,0010" in tags and tags["7fe0,0010"] is None  # binary, like the core's null
    assert "0020,0032" not in tags  # not a rendering key: not even parsed
    assert "0028,9999" not in tags and "junk" not in tags and tags.get("zz,zz") is None


def test_raw_bytes_follow_a_path_into_sequences() -> None:
    lut = _dataset(LUTDescriptor=[2, 0, 16], LUTData=b"\x01\x00\x02\x00")
    lut["LUTData"].VR = "OW"
    source = _dataset(Rows=1, Columns=1, BitsAllocated=16, PixelRepresentation=0)
    source.VOILUTSequence, source.PixelData = [lut], b"\0\0"
    dataset = header.read_header(_stored(source, ExplicitVRLittleEndian))
    assert header.raw_bytes(dataset, ["0028,3010", 0, "0028,3006"]) == b"\x01\x00\x02\x00"
    assert header.raw_bytes(dataset, ["7fe0,0010"]) == b"\0\0"
    assert header.DatasetTags(dataset)["0028,3010"][0]["0028,3002"] == "2\\0\\16"
    for missing in (["0028,3010", 3, "0028,3006"], ["0028,2000"], ["0042,0011"]):
        with pytest.raises(HttpError) as error:
            header.raw_bytes(dataset, missing)
        assert error.value.status == 404


def test_every_header_key_the_code_reads_is_parsed() -> None:
    package = Path(rendering.__file__).parents[1]
    names = (
        "dicom/header.py",
        "dicom/pixel_data.py",
        "dicom/rendering.py",
        "dicom/image_output.py",
        "services/rendered.py",
        "services/wado_uri.py",
        "orthanc/stored_instances.py",
        "services/frames.py",
    )
    sources = [package / name for name in names]
    used = {
        k for path in sources for k in re.findall(r'"([0-9a-f]{4},[0-9a-f]{4})"', path.read_text())
    }
    assert used <= header.HEADER_KEYS


@pytest.mark.parametrize(
    ("samples", "bits", "signed"), [(1, 16, True), (1, 16, False), (3, 8, False), (1, 8, False)]
)
def test_rle_frames_decode_to_the_stored_values(samples: int, bits: int, signed: bool) -> None:
    frames = np.random.default_rng(2).integers(0, 200, (2, 5, 7, samples)) - (50 if signed else 0)
    frames = frames.astype(f"<{'i' if signed else 'u'}{bits // 8}").squeeze(
        -1 if samples == 1 else None
    )
    source = _dataset(
        Rows=5, Columns=7, SamplesPerPixel=samples, BitsAllocated=bits, BitsStored=bits,
        HighBit=bits - 1, PixelRepresentation=int(signed), NumberOfFrames=2,
        PhotometricInterpretation="RGB" if samples == 3 else "MONOCHROME2",
        PlanarConfiguration=0,
    )  # fmt: skip
    source.PixelData = frames.tobytes()
    source["PixelData"].VR = "OB"
    source.file_meta = FileMetaDataset()
    source.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    source.compress(RLELossless, encoding_plugin="pydicom")
    fmt = PixelFormat(5, 7, samples, bits, bits, signed, source.PhotometricInterpretation,
                      frames=2)  # fmt: skip
    for index in (1, 2):
        decoded = pixel_data.decode_rle_frame(source.PixelData, index, fmt)
        assert np.array_equal(decoded, frames[index - 1])


def test_rle_that_is_not_rle_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        pixel_data.decode_rle_frame(
            b"\xfe\xff\x00\xe0" + b"\0" * 4 + b"\xfe\xff\x00\xe0\x04\x00\x00\x00abcd",
            1,
            PixelFormat(2, 2),
        )


def _ct_file(rows: int = 4) -> bytes:
    source = _dataset(
        Rows=rows, Columns=4, BitsAllocated=16, BitsStored=16, HighBit=15, SamplesPerPixel=1,
        PixelRepresentation=1, PhotometricInterpretation="MONOCHROME2", RescaleIntercept="-1024",
        StudyInstanceUID="1.2.3", SeriesInstanceUID="1.2.3.4", SOPInstanceUID="1.2.3.4.5",
    )  # fmt: skip
    source.PixelData = np.arange(rows * 4, dtype="<i2").tobytes()
    return _stored(source, ExplicitVRLittleEndian)


class DirectCore(FakeCore):
    """A core with the SDK's shortcuts (core.DirectInstanceAccess)."""

    def lookup_instance(self, sop_uid: str) -> str | None:
        return {"1.2.3.4.5": "abc"}.get(sop_uid)

    def instance_file(self, orthanc_id: str, listed: object = None) -> bytes:
        return self.get(f"/instances/{orthanc_id}/file")


def test_renderer_reads_a_small_file_once_for_header_and_pixels() -> None:
    core = DirectCore(
        {("GET", "/instances/abc/attachments/dicom/info"): file_info(900),
         ("GET", "/instances/abc/file"): _ct_file()}
    )  # fmt: skip
    renderer = Renderer(Configuration(), core)
    assert (
        renderer.instances.lookup("1.2.3.4.5") == "abc" and renderer.instances.lookup("9.9") is None
    )
    instance = renderer.instances.load("abc")
    assert instance.belongs_to("1.2.3", "1.2.3.4") and not instance.belongs_to("1.2.3", "9")
    answer = renderer.render(instance, RenderOptions(media_type="image/png"), None)
    pixels = np.asarray(Image.open(io.BytesIO(answer.body)))
    assert pixels[0, 0] == 0 and pixels[-1, -1] == 255  # min to max of the 16 values
    assert [uri for _, uri, _ in core.calls] == [
        "/instances/abc/attachments/dicom/info",
        "/instances/abc/file",
    ]


def test_renderer_reads_a_large_file_tags_and_frame_only(monkeypatch) -> None:
    monkeypatch.setattr(stored_instances, "WHOLE_FILE_LIMIT", 100)
    header = {"0028,0010": "4", "0028,0011": "4", "0028,0103": "1", "7fe0,0010": None}
    core = FakeCore(
        {("POST", "/tools/lookup"): [{"Type": "Instance", "ID": "abc"}],
         ("GET", "/instances/abc/attachments/dicom/info"): file_info(900),
         ("GET", "/instances/abc/tags?short"): header,
         ("GET", "/instances/abc/metadata/TransferSyntax"): ExplicitVRLittleEndian.encode(),
         ("GET", "/instances/abc/frames/0/raw"): np.arange(16, dtype="<i2").tobytes()}
    )  # fmt: skip
    renderer = Renderer(Configuration(), core)
    instance = renderer.instances.load(renderer.instances.lookup("1.2.3.4.5") or "")
    answer = renderer.render(instance, RenderOptions(media_type="image/png"), None)
    assert np.asarray(Image.open(io.BytesIO(answer.body)))[-1, -1] == 255
    assert "/instances/abc/file" not in [uri for _, uri, _ in core.calls]


def test_renderer_falls_back_to_the_cores_tags_when_pydicom_cannot_parse() -> None:
    core = FakeCore(
        {("GET", "/instances/abc/attachments/dicom/info"): file_info(9),
         ("GET", "/instances/abc/file"): b"not DICOM",
         ("GET", "/instances/abc/tags?short"): {"0028,0010": "4"},
         ("GET", "/instances/abc/metadata/TransferSyntax"): b"1.2.840.10008.1.2.1"}
    )  # fmt: skip
    instance = Renderer(Configuration(), core).instances.load("abc")
    assert instance.dataset is None and instance.format.rows == 4
