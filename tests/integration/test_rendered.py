"""Retrieve Rendered and thumbnails against a live Orthanc, checking pixels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.harness import Orthanc

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
MPEG4 = "1.2.840.10008.1.2.4.102"


def _with_new_uids(path: Path) -> pydicom.Dataset:
    dataset = pydicom.dcmread(path)
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return dataset


def _store(orthanc: Orthanc, dataset: pydicom.Dataset) -> str:
    """Upload, returning the instance's DICOMweb URL below /dicom-web/."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    orthanc.post("/instances", data=buffer.getvalue()).raise_for_status()
    return (
        f"/dicom-web/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}"
    )


def _image(answer) -> Image.Image:
    assert answer.status_code == 200, answer.text
    return Image.open(io.BytesIO(answer.content))


def _pixels(answer) -> np.ndarray:
    return np.asarray(_image(answer), dtype=np.int32)


def _document(study: str, sop_class: str, syntax: str, **values) -> pydicom.Dataset:
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    dataset.file_meta.MediaStorageSOPClassUID = sop_class
    dataset.SOPClassUID = sop_class
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, generate_uid()
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.PatientID, dataset.PatientName, dataset.Modality = "RENDERDOC", "Doc^Test", "OT"
    for name, value in values.items():
        setattr(dataset, name, value)
    return dataset


@pytest.fixture(scope="module")
def ct(orthanc: Orthanc, test_files) -> tuple[str, pydicom.Dataset]:
    dataset = _with_new_uids(test_files["ct"])
    return _store(orthanc, dataset), dataset


def test_ct_default_window_is_min_max_of_modality_values(orthanc: Orthanc, ct) -> None:
    url, dataset = ct
    rendered = _pixels(orthanc.get(url + "/rendered", headers={"Accept": "image/png"}))
    hu = dataset.pixel_array.astype(float) * float(dataset.RescaleSlope) + dataset.RescaleIntercept
    expected = np.rint((hu - hu.min()) / (hu.max() - hu.min()) * 255)
    assert rendered.shape == dataset.pixel_array.shape
    assert np.abs(rendered - expected).max() <= 1


def _query_linear_exact(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """`window=c,w,linear-exact` as the official plugin maps it (PS3.3 adds 0.5 to (x-c)/w)."""
    return np.where(
        hu > center + width / 2, 255, np.clip(np.rint((hu - center) / width * 255), 0, 255)
    )


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("0,200,linear-exact", lambda hu: _query_linear_exact(hu, 0, 200)),
        ("0,200", lambda hu: np.clip(np.rint(((hu + 0.5) / 199 + 0.5) * 255), 0, 255)),
    ],
)
def test_explicit_window_gives_expected_grey_values(
    orthanc: Orthanc, ct, window: str, expected
) -> None:
    url, dataset = ct
    answer = orthanc.get(
        url + f"/frames/1/rendered?window={window}", headers={"Accept": "image/png"}
    )
    hu = dataset.pixel_array.astype(float) + dataset.RescaleIntercept
    assert np.abs(_pixels(answer) - expected(hu)).max() <= 1


def test_query_window_applies_to_each_frames_own_rescale(orthanc: Orthanc) -> None:
    """An Enhanced-style multi-frame: each frame's Pixel Value Transformation is used."""
    dataset = _document(
        generate_uid(), "1.2.840.10008.5.1.4.1.1.7.2", ExplicitVRLittleEndian,
        Rows=2, Columns=2, NumberOfFrames=2, SamplesPerPixel=1, BitsAllocated=16,
        BitsStored=16, HighBit=15, PixelRepresentation=0,
        PhotometricInterpretation="MONOCHROME2",
    )  # fmt: skip
    dataset.PerFrameFunctionalGroupsSequence = [Dataset() for _ in range(2)]
    for item, (intercept, slope) in zip(
        dataset.PerFrameFunctionalGroupsSequence, [(0, 1), (100, 2)], strict=True
    ):
        transformation = Dataset()
        transformation.RescaleIntercept, transformation.RescaleSlope = intercept, slope
        item.PixelValueTransformationSequence = [transformation]
    stored = np.array([0, 16, 32, 48], "<u2")
    dataset.PixelData = np.concatenate([stored, stored]).tobytes()
    url = _store(orthanc, dataset)
    for frame, values in ((1, stored), (2, stored * 2 + 100)):
        answer = orthanc.get(
            f"{url}/frames/{frame}/rendered?window=0,256,linear-exact",
            headers={"Accept": "image/png"},
        )
        expected = _query_linear_exact(values.astype(float), 0, 256).reshape(2, 2)
        assert np.abs(_pixels(answer) - expected).max() <= 1


def test_jpeg_close_to_the_official_plugin(orthanc: Orthanc, official: Orthanc, ct) -> None:
    url, dataset = ct
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    official.post("/instances", data=buffer.getvalue()).raise_for_status()
    ours = _pixels(orthanc.get(url + "/rendered"))
    theirs = _pixels(official.get(url + "/rendered"))
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).mean() < 3


def test_viewport_size_aspect_and_flip(orthanc: Orthanc, ct) -> None:
    url, _ = ct
    assert _image(orthanc.get(url + "/rendered?viewport=64,32")).size == (32, 32)
    whole = _pixels(
        orthanc.get(url + "/rendered?viewport=128,128", headers={"Accept": "image/png"})
    )
    flipped = orthanc.get(
        url + "/rendered?viewport=64,128,64,0,-64,128", headers={"Accept": "image/png"}
    )
    assert np.array_equal(_pixels(flipped), whole[:, 63::-1])


def test_thumbnail_is_small_and_annotation_burns_text(orthanc: Orthanc, ct) -> None:
    url, _ = ct
    assert max(_image(orthanc.get(url + "/thumbnail")).size) <= 128
    plain = _pixels(orthanc.get(url + "/rendered", headers={"Accept": "image/png"}))
    annotated = orthanc.get(
        url + "/rendered?annotation=patient,technique", headers={"Accept": "image/png"}
    )
    difference = np.abs(_pixels(annotated) - plain)
    assert difference[:30].max() > 100 and difference[60:].max() == 0


@pytest.mark.parametrize("role", ["rgb", "ybr"])
def test_png_of_8_bit_colour_equals_stored_pixels(orthanc: Orthanc, test_files, role: str) -> None:
    dataset = _with_new_uids(test_files[role])
    url = _store(orthanc, dataset)
    expected = dataset.pixel_array.astype(np.int32)  # pydicom converts YBR_FULL_422 to RGB
    rendered = _pixels(orthanc.get(url + "/rendered", headers={"Accept": "image/png"}))
    assert np.abs(rendered - expected).max() <= 1


def test_png_of_8_bit_grayscale_equals_stored_pixels(orthanc: Orthanc, test_files) -> None:
    dataset = _with_new_uids(test_files["ct"])
    values = (np.arange(128 * 128) % 256).astype(np.uint8).reshape(128, 128)
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit, dataset.PixelRepresentation = 7, 0
    for keyword in ("RescaleIntercept", "RescaleSlope", "SmallestImagePixelValue"):
        delattr(dataset, keyword) if keyword in dataset else None
    dataset.PixelData = values.tobytes()
    url = _store(orthanc, dataset)
    assert np.array_equal(
        _pixels(orthanc.get(url + "/rendered", headers={"Accept": "image/png"})), values
    )


def test_monochrome1_is_inverted(orthanc: Orthanc, ct) -> None:
    _, source = ct
    dataset = _with_new_uids(Path(source.filename))
    dataset.PhotometricInterpretation = "MONOCHROME1"
    url = _store(orthanc, dataset)
    normal = _pixels(orthanc.get(ct[0] + "/rendered", headers={"Accept": "image/png"}))
    inverted = _pixels(orthanc.get(url + "/rendered", headers={"Accept": "image/png"}))
    assert np.abs(inverted - (255 - normal)).max() <= 1


@pytest.mark.parametrize(
    "role", ["mr_rle", "mr_jpeg_ls", "mr_bigendian", "jpeg2000", "jpeg_baseline_rgb"]
)
def test_compressed_and_big_endian_syntaxes_render(orthanc: Orthanc, test_files, role: str) -> None:
    dataset = _with_new_uids(test_files[role])
    url = _store(orthanc, dataset)
    image = _image(orthanc.get(url + "/rendered", headers={"Accept": "image/png"}))
    assert image.size == (dataset.Columns, dataset.Rows)
    if role.startswith("mr"):  # all the MR variants hold the same pixels and window 600/1600
        reference = _with_new_uids(test_files["mr"])
        expected = np.clip(((reference.pixel_array - 599.5) / 1599 + 0.5) * 255, 0, 255)
        assert np.abs(np.asarray(image, float) - expected).max() <= 1


def test_signed_jpeg_2000_renders_as_its_uncompressed_pixels(orthanc: Orthanc, test_files) -> None:
    """Orthanc 1.10.1 cannot decode JPEG 2000 without GDCM: pydicom's decoders do, signed."""
    compressed = _with_new_uids(test_files["jpeg2000"])
    uncompressed = _with_new_uids(test_files["jpeg2000"])
    uncompressed.PixelData = compressed.pixel_array.tobytes()
    uncompressed.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for dataset in (compressed, uncompressed):
        dataset.WindowCenter, dataset.WindowWidth = 100, 200  # min-max would hide an offset
    rendered = [
        _pixels(orthanc.get(_store(orthanc, d) + "/rendered", headers={"Accept": "image/png"}))
        for d in (compressed, uncompressed)
    ]
    assert np.array_equal(rendered[0], rendered[1])


def test_multiframe_frames_and_animated_gif(orthanc: Orthanc, test_files) -> None:
    dataset = _with_new_uids(test_files["multiframe_rgb"])
    url = _store(orthanc, dataset)
    frames = dataset.pixel_array
    second = _pixels(orthanc.get(url + "/frames/2/rendered", headers={"Accept": "image/png"}))
    assert np.abs(second - frames[1].astype(np.int32)).max() <= 1
    gif = _image(orthanc.get(url + "/rendered", headers={"Accept": "image/gif"}))
    assert gif.n_frames == 2
    assert orthanc.get(url + "/frames/3/rendered").status_code == 400
    assert orthanc.get(url + "/frames/1,2/rendered").status_code == 400
    assert (
        _image(orthanc.get(url + "/frames/2,1/rendered", headers={"Accept": "image/gif"})).n_frames
        == 2
    )


def test_study_and_series_render_the_middle_instance(orthanc: Orthanc, test_files) -> None:
    first = _with_new_uids(test_files["ct"])
    urls = []
    for number in (3, 1, 2):
        dataset = _with_new_uids(test_files["ct"])
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = (
            first.StudyInstanceUID,
            first.SeriesInstanceUID,
        )
        dataset.InstanceNumber = number
        dataset.PixelData = (dataset.pixel_array + number * 100).astype("<i2").tobytes()
        urls.append((number, _store(orthanc, dataset)))
    middle = dict(urls)[2]
    expected = _pixels(orthanc.get(middle + "/rendered", headers={"Accept": "image/png"}))
    series_url = middle.split("/instances/")[0]
    study_url = series_url.split("/series/")[0]
    for url in (series_url, study_url):
        assert np.array_equal(
            _pixels(orthanc.get(url + "/rendered", headers={"Accept": "image/png"})), expected
        )
        assert _image(orthanc.get(url + "/thumbnail")).format == "JPEG"


def test_of_two_instances_the_series_renders_the_first(orthanc: Orthanc, test_files) -> None:
    first = _with_new_uids(test_files["ct"])
    urls = {}
    for number in (2, 1):
        dataset = _with_new_uids(test_files["ct"])
        dataset.StudyInstanceUID = first.StudyInstanceUID
        dataset.SeriesInstanceUID = first.SeriesInstanceUID
        dataset.InstanceNumber = number
        dataset.PixelData = (dataset.pixel_array + number * 100).astype("<i2").tobytes()
        urls[number] = _store(orthanc, dataset)
    expected = orthanc.get(urls[1] + "/rendered").content
    series_url = urls[1].split("/instances/")[0]
    for url in (series_url, series_url.split("/series/")[0]):
        assert orthanc.get(url + "/rendered").content == expected


def test_pdf_rendered_is_the_pdf_and_thumbnail_an_icon(orthanc: Orthanc) -> None:
    dataset = _document(
        generate_uid(), "1.2.840.10008.5.1.4.1.1.104.1", ExplicitVRLittleEndian,
        MIMETypeOfEncapsulatedDocument="application/pdf", EncapsulatedDocument=PDF,
    )  # fmt: skip
    url = _store(orthanc, dataset)
    answer = orthanc.get(url + "/rendered")
    assert answer.headers["Content-Type"] == "application/pdf" and answer.content == PDF
    assert _image(orthanc.get(url + "/thumbnail")).size == (128, 128)


def test_video_rendered_is_the_stream(orthanc: Orthanc) -> None:
    stream = b"\x00\x00\x00\x18ftypmp42" + bytes(range(200))
    dataset = _document(generate_uid(), "1.2.840.10008.5.1.4.1.1.77.1.4.1", MPEG4)
    dataset.update(_video_pixels(stream))
    url = _store(orthanc, dataset)
    answer = orthanc.get(url + "/rendered")
    assert answer.headers["Content-Type"] == "video/mp4"
    assert answer.content.rstrip(b"\0") == stream.rstrip(b"\0")
    assert _image(orthanc.get(url + "/thumbnail", headers={"Accept": "image/png"})).format == "PNG"


def _video_pixels(stream: bytes) -> Dataset:
    from pydicom.encaps import encapsulate

    pixels = Dataset()
    pixels.Rows, pixels.Columns, pixels.SamplesPerPixel = 16, 16, 3
    pixels.PhotometricInterpretation, pixels.BitsAllocated = "YBR_PARTIAL_420", 8
    pixels.BitsStored, pixels.HighBit, pixels.PixelRepresentation = 8, 7, 0
    pixels.NumberOfFrames = 1
    pixels.PixelData = encapsulate([stream])
    pixels["PixelData"].VR = "OB"
    return pixels


@pytest.mark.parametrize(
    ("suffix", "status"),
    [
        ("/rendered?quality=0", 400),
        ("/rendered?quality=101", 400),
        ("/rendered?viewport=0,0", 400),
        ("/rendered?viewport=a,b", 400),
        ("/rendered?window=40,0", 400),
        ("/rendered?window=40,400,gamma", 400),
        ("/rendered?annotation=all", 400),
        ("/rendered?iccprofile=maybe", 400),
        ("/frames/0/rendered", 400),
        ("/frames/2/rendered", 400),
        ("/frames/x/thumbnail", 400),
    ],
)
def test_bad_parameters_are_400_with_a_message(
    orthanc: Orthanc, ct, suffix: str, status: int
) -> None:
    answer = orthanc.get(ct[0] + suffix)
    assert answer.status_code == status
    assert answer.json()["Message"]


def test_unknown_malformed_non_image_and_unacceptable(orthanc: Orthanc, ct, test_files) -> None:
    url, dataset = ct
    assert (
        orthanc.get(url.replace(dataset.SOPInstanceUID, "1.2.3.4") + "/rendered").status_code == 404
    )
    assert (
        orthanc.get(url.replace(dataset.SeriesInstanceUID, "1.2.3") + "/rendered").status_code
        == 404
    )
    assert orthanc.get(url.replace(dataset.SOPInstanceUID, "abc") + "/rendered").status_code == 400
    assert orthanc.get("/dicom-web/studies/1.2.3.4.5/rendered").status_code == 404
    assert (
        orthanc.get(url + "/rendered", headers={"Accept": "application/dicom"}).status_code == 406
    )
    sr_url = _store(orthanc, _with_new_uids(test_files["sr"]))
    answer = orthanc.get(sr_url + "/rendered")
    assert answer.status_code == 400 and "not an image" in answer.json()["Message"]


def test_icc_profile_yes_embeds_a_profile(orthanc: Orthanc, test_files) -> None:
    url = _store(orthanc, _with_new_uids(test_files["rgb"]))
    assert "icc_profile" not in _image(orthanc.get(url + "/rendered")).info
    assert _image(orthanc.get(url + "/rendered?iccprofile=yes")).info["icc_profile"]


def test_file_over_the_whole_file_limit_renders_from_tags_and_frame(orthanc: Orthanc, ct) -> None:
    """Beyond WHOLE_FILE_LIMIT the header comes from the core's JSON and one frame at a time."""
    _, source = ct
    dataset = _with_new_uids(Path(source.filename))
    rows = columns = 1536
    frames = [
        (np.add.outer(np.arange(rows), np.zeros(columns, int)) % 1000 + 100 * k).astype("<i2")
        for k in range(4)
    ]  # 4 x 4.5 MB: over the 16 MB limit
    dataset.Rows, dataset.Columns, dataset.NumberOfFrames = rows, columns, len(frames)
    dataset.PixelData = b"".join(frame.tobytes() for frame in frames)
    url = _store(orthanc, dataset)
    answer = orthanc.get(
        url + "/frames/3/rendered?window=500,1000,linear-exact", headers={"Accept": "image/png"}
    )
    hu = frames[2].astype(float) + dataset.RescaleIntercept
    assert np.abs(_pixels(answer) - _query_linear_exact(hu, 500, 1000)).max() <= 1
