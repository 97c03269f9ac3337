"""WADO-RS Retrieve Frames against a live Orthanc, with files in several transfer syntaxes."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from tests.harness import PYDICOM_FILES, Orthanc
from tests.helpers import derived, parts, parts_of, store
from tests.integration.test_wado_retrieve import uids

EXPLICIT_LE = "1.2.840.10008.1.2.1"
JPEG_LS = "1.2.840.10008.1.2.4.80"
RLE = "1.2.840.10008.1.2.5"
OCTET = "multipart/related; type=application/octet-stream"
ANY_SYNTAX = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
ROLES = (
    "ct",
    "mr",
    "mr_rle",
    "mr_bigendian",
    "mr_jpeg_ls",
    "jpeg_baseline_rgb",
    "jpeg2000",
    "multiframe_rgb",
    "multiframe_dose",
    "ybr",
    "rtplan",
)


@pytest.fixture(scope="module")
def files(orthanc: Orthanc, test_files: dict[str, Path]) -> dict[str, bytes]:
    study = generate_uid()
    derived_files = {role: derived(test_files[role], study) for role in ROLES}
    store(orthanc, list(derived_files.values()))
    return derived_files


def frames_url(dicom: bytes, frames: str) -> str:
    study, series, sop = uids(dicom)
    return f"/dicom-web/studies/{study}/series/{series}/instances/{sop}/frames/{frames}"


def get_frames(orthanc: Orthanc, dicom: bytes, frames: str, accept: str | None = None):
    answer = orthanc.get(frames_url(dicom, frames), headers={"Accept": accept} if accept else {})
    assert answer.status_code == 200, answer.text
    return answer.headers["Content-Type"], [(p.content_type, p.body) for p in parts(answer)]


def pixels(dicom: bytes) -> bytes:
    return pydicom.dcmread(BytesIO(dicom)).pixel_array.tobytes()


def test_uncompressed_frame_is_the_pixel_data(orthanc, files) -> None:
    content_type, [(part_type, frame)] = get_frames(orthanc, files["ct"], "1", OCTET)
    # Orthanc puts the parts' content type in `type`, as for the official plugin.
    assert content_type.startswith(
        f'multipart/related; type="application/octet-stream; transfer-syntax={EXPLICIT_LE}"'
    )
    assert part_type == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    assert frame == pydicom.dcmread(BytesIO(files["ct"])).PixelData


def test_big_endian_pixel_data_comes_out_little_endian(orthanc, files) -> None:
    for accept in (OCTET, ANY_SYNTAX, None):
        _, [(part_type, frame)] = get_frames(orthanc, files["mr_bigendian"], "1", accept)
        assert part_type.endswith(EXPLICIT_LE)
        assert frame == pydicom.dcmread(BytesIO(files["mr"])).PixelData


def test_multi_frame_uncompressed_picks_the_listed_frames(orthanc, files) -> None:
    dose = pydicom.dcmread(BytesIO(files["multiframe_dose"]))
    size = len(dose.PixelData) // int(dose.NumberOfFrames)
    _, parts = get_frames(orthanc, files["multiframe_dose"], "15,1,3", OCTET)
    assert [frame for _, frame in parts] == [
        dose.PixelData[(n - 1) * size : n * size] for n in (15, 1, 3)
    ]


def test_compressed_frames_in_their_stored_media_type(orthanc, files) -> None:
    dataset = pydicom.dcmread(BytesIO(files["multiframe_rgb"]))
    stored = list(generate_frames(dataset.PixelData, number_of_frames=2))
    for accept in (
        "multipart/related; type=image/x-dicom-rle",
        'multipart/related; type="*/*"',
    ):
        content_type, parts = get_frames(orthanc, files["multiframe_rgb"], "2,1", accept)
        assert f'type="image/x-dicom-rle; transfer-syntax={RLE}"' in content_type
        assert parts == [
            (f"image/x-dicom-rle; transfer-syntax={RLE}", f) for f in (stored[1], stored[0])
        ]


def test_any_syntax_as_octet_stream_keeps_the_compressed_bytes(orthanc, files) -> None:
    _, [(part_type, frame)] = get_frames(orthanc, files["mr_jpeg_ls"], "1", ANY_SYNTAX)
    assert part_type == f"application/octet-stream; transfer-syntax={JPEG_LS}"
    [expected] = generate_frames(
        pydicom.dcmread(BytesIO(files["mr_jpeg_ls"])).PixelData, number_of_frames=1
    )
    assert frame == expected


def test_compressed_frames_are_decompressed_when_octet_stream_is_asked(orthanc, files) -> None:
    _, [(part_type, frame)] = get_frames(orthanc, files["mr_jpeg_ls"], "1", OCTET)
    assert part_type.endswith(EXPLICIT_LE)
    assert frame == pixels(files["mr"])
    _, parts = get_frames(orthanc, files["multiframe_rgb"], "1,2", OCTET)
    assert b"".join(frame for _, frame in parts) == pixels(files["multiframe_rgb"])


def test_rle_frames_are_decoded_by_the_plugin_not_transcoded(orthanc, files) -> None:
    _, [(part_type, frame)] = get_frames(orthanc, files["mr_rle"], "1", OCTET)
    assert part_type.endswith(EXPLICIT_LE)
    assert frame == pixels(files["mr_rle"])
    instance_id = orthanc.post("/tools/lookup", data=uids(files["mr_rle"])[2]).json()[0]["ID"]
    assert f"/instances/{instance_id}/modify" not in orthanc.log_text()


def test_without_accept_compressed_frames_come_decoded(orthanc, files) -> None:
    dataset = pydicom.dcmread(BytesIO(files["jpeg_baseline_rgb"]))  # YBR_FULL_422 JPEG
    for accept in (None, "*/*"):
        content_type, [(part_type, frame)] = get_frames(
            orthanc, files["jpeg_baseline_rgb"], "1", accept
        )
        assert part_type == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
        assert f'type="{part_type}"' in content_type
        # Decoded by the core (DCMTK), to RGB: pydicom's decoder differs by rounding only.
        decoded = numpy.frombuffer(frame, numpy.uint8).reshape(dataset.Rows, dataset.Columns, 3)
        assert numpy.abs(decoded.astype(int) - dataset.pixel_array).max() <= 3


def test_jpeg_2000_frames_asked_uncompressed_are_decoded_by_the_plugin(orthanc, files) -> None:
    """Orthanc 1.10.1 cannot decode JPEG 2000 without GDCM: pydicom and Pillow's OpenJPEG do."""
    for accept in (OCTET, None):
        _, [(part_type, frame)] = get_frames(orthanc, files["jpeg2000"], "1", accept)
        assert part_type == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
        assert frame == pixels(files["jpeg2000"])


def test_without_accept_frames_nothing_decodes_come_as_stored(orthanc) -> None:
    dicom = derived(PYDICOM_FILES / "GDCMJ2K_TextGBR.dcm", generate_uid())
    store(orthanc, [dicom])
    _, [(part_type, frame)] = get_frames(orthanc, dicom, "1")
    assert part_type == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"
    dataset = pydicom.dcmread(BytesIO(dicom))
    assert [frame] == list(generate_frames(dataset.PixelData, number_of_frames=1))


def test_a_single_frame_has_its_content_location(orthanc, files) -> None:
    url = frames_url(files["multiframe_dose"], "15")
    [part] = parts(orthanc.get(url, headers={"Accept": OCTET}))
    assert part.headers["content-location"] == orthanc.url + url


def test_several_frames_are_streamed_uncompressed(orthanc, files) -> None:
    headers = {"Accept": OCTET, "Accept-Encoding": "gzip, deflate"}
    one = orthanc.get(frames_url(files["multiframe_dose"], "1"), headers=headers)
    several = orthanc.get(frames_url(files["multiframe_dose"], "1,2"), headers=headers)
    assert one.status_code == several.status_code == 200
    # Orthanc gzips a single frame like any answer, and streams several as they are.
    assert one.headers.get("Content-Encoding") == "gzip"
    assert "Content-Encoding" not in several.headers
    assert parts_of(several)[0] == parts_of(one)[0]


def test_an_instance_under_another_study_is_404(orthanc, files) -> None:
    _, series, sop = uids(files["ct"])
    answer = orthanc.get(
        f"/dicom-web/studies/{generate_uid()}/series/{series}/instances/{sop}/frames/1"
    )
    assert answer.status_code == 404 and answer.json()["HttpStatus"] == 404


def test_frames_are_transcoded_to_an_asked_image_type(orthanc, files) -> None:
    _, [(part_type, frame)] = get_frames(
        orthanc, files["ct"], "1", "multipart/related; type=image/jpeg"
    )
    # Not image/jls: JPEG-LS is never produced, its encoder crashes Orthanc 1.10.1.
    assert part_type == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.70"
    assert frame.startswith(b"\xff\xd8")  # a JPEG code stream


def test_ybr_full_422_frames_have_the_subsampled_size(orthanc, files) -> None:
    dataset = pydicom.dcmread(BytesIO(files["ybr"]))
    _, [(_, frame)] = get_frames(orthanc, files["ybr"], "1", OCTET)
    assert frame == dataset.PixelData
    assert len(frame) == dataset.Rows * dataset.Columns * 2


def test_a_syntax_the_core_cannot_write_falls_back_to_the_next_accepted(orthanc, files) -> None:
    accept = f"multipart/related; type=image/jp2, {OCTET}; q=0.5"
    _, [(part_type, _)] = get_frames(orthanc, files["ct"], "1", accept)
    assert part_type.startswith("application/octet-stream")


@pytest.mark.parametrize(
    ("role", "frames", "accept", "status"),
    [
        ("ct", "0", None, 400),
        ("ct", "2", None, 400),
        ("multiframe_dose", "1,16", None, 400),
        ("ct", "one", None, 400),
        ("ct", "1,,2", None, 400),
        ("ct", "1,1", None, 400),
        ("ct", "99999999999999", None, 400),
        ("rtplan", "1", None, 400),
        ("ct", "1", "image/png", 406),
        ("ct", "1", "multipart/related; type=application/dicom", 406),
        ("ct", "1", "multipart/related; type=image/jp2", 406),
    ],
)
def test_bad_requests(
    orthanc, files, role: str, frames: str, accept: str | None, status: int
) -> None:
    answer = orthanc.get(
        frames_url(files[role], frames), headers={"Accept": accept} if accept else {}
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["HttpStatus"] == status


def test_unknown_or_malformed_instance(orthanc, files) -> None:
    study, series, _ = uids(files["ct"])
    base = f"/dicom-web/studies/{study}/series/{series}/instances"
    assert orthanc.get(f"{base}/{generate_uid()}/frames/1").status_code == 404
    assert orthanc.get(f"{base}/1.2.x/frames/1").status_code == 400


def test_dicomweb_client_retrieve_instance_frames(orthanc, files) -> None:
    client = DICOMwebClient(orthanc.url + "/dicom-web")
    study, series, sop = uids(files["multiframe_rgb"])
    decoded = pixels(files["multiframe_rgb"])
    [frame] = client.retrieve_instance_frames(
        study, series, sop, [2], media_types=(("application/octet-stream", EXPLICIT_LE),)
    )
    assert frame == decoded[len(decoded) // 2 :]
    stored = client.retrieve_instance_frames(study, series, sop, [1, 2])
    assert len(stored) == 2 and stored[0].startswith(b"\x03\x00\x00\x00")  # RLE header: 3 segments
    study, series, sop = uids(files["mr"])
    [frame] = client.retrieve_instance_frames(study, series, sop, [1])
    assert numpy.array_equal(
        numpy.frombuffer(frame, dtype="<i2"),
        pydicom.dcmread(BytesIO(files["mr"])).pixel_array.ravel(),
    )
