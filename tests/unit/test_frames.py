"""Retrieve Frames and frame extraction against a fake core (no Orthanc)."""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import RLELossless

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.dicom import pixel_data
from orthanc_dicomweb.dicom.header import PixelFormat
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.frame_list import parse_frame_list
from orthanc_dicomweb.http.multipart import Part, boundary_of, parse_multipart
from orthanc_dicomweb.http.negotiation import parse_media_type
from orthanc_dicomweb.http.web import MultipartResponse, Request, Response
from orthanc_dicomweb.services import frames as frames_module
from orthanc_dicomweb.services.frames import RetrieveFrames, frames_of_file, is_stored_form
from tests.harness import PYDICOM_FILES
from tests.unit.fakes import FakeCore, file_info

STUDY, SERIES, SOP = "1.9", "1.9.3", "1.9.3.1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"
JPEG_LS = "1.2.840.10008.1.2.4.80"
OCTET = "multipart/related; type=application/octet-stream"
ANY_SYNTAX = f"{OCTET}; transfer-syntax=*"


def _file(name: str, study: str = STUDY, series: str = SERIES) -> bytes:
    """A pydicom test file given the UIDs the requests name."""
    dataset = pydicom.dcmread(PYDICOM_FILES / name)
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID = study, series, SOP
    out = BytesIO()
    dataset.save_as(out)
    return out.getvalue()


def _dataset(dicom: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(BytesIO(dicom))


def _core(dicom: bytes, extra: dict[tuple[str, str], Any] | None = None) -> FakeCore:
    """A core holding one instance "i" stored as `dicom`, found by its SOP Instance UID."""
    return FakeCore(
        {
            ("POST", "/tools/lookup"): [{"Type": "Instance", "ID": "i"}],
            ("GET", "/instances/i/attachments/dicom/info"): file_info(len(dicom)),
            ("GET", "/instances/i/file"): dicom,
            **(extra or {}),
        }
    )


def _answer(core: FakeCore, frames: str, accept: str | None) -> Response | MultipartResponse:
    headers = {"accept": accept, "host": "pacs:8042"} if accept else {"host": "pacs:8042"}
    request = Request("GET", "/dicom-web/...", (STUDY, SERIES, SOP, frames), headers=headers)
    return RetrieveFrames(Configuration(), core).retrieve_frames(request)


def _parts(core: FakeCore, frames: str, accept: str | None = None) -> tuple[str, list[Part]]:
    """The `type` parameter of a single frame's answer, and its parts."""
    answer = _answer(core, frames, accept)
    assert isinstance(answer, Response) and isinstance(answer.body, bytes)
    part_type = parse_media_type(answer.content_type).param("type") or ""
    return part_type, parse_multipart(answer.body, boundary_of(answer.content_type))


def _frames(core: FakeCore, frames: str, accept: str | None = None) -> tuple[str, list[Any]]:
    """The parts' content type (the answer's `type`), and each part's type and bytes."""
    if "," in frames:  # several frames: streamed by the core, every part of one type
        answer = _answer(core, frames, accept)
        assert isinstance(answer, MultipartResponse)
        return answer.part_content_type, [
            (answer.part_content_type, bytes(part)) for part in answer.parts
        ]
    part_type, parts = _parts(core, frames, accept)
    return part_type, [(part.content_type, bytes(part.body)) for part in parts]


def _uris(core: FakeCore) -> list[str]:
    return [uri for _, uri, _ in core.calls]


# --- Frame lists ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "numbers"), [("1", [1]), ("1,3,5", [1, 3, 5]), ("7, 2", [7, 2]), ("010", [10])]
)
def test_frame_lists(text: str, numbers: list[int]) -> None:
    assert parse_frame_list(text) == numbers


@pytest.mark.parametrize("text", ["0", "1,0", "a", "1,,2", "", "1;2", "-1", "1.5", "1,1", "9" * 12])
def test_bad_frame_lists_are_400(text: str) -> None:
    with pytest.raises(HttpError) as error:
        parse_frame_list(text)
    assert error.value.status == 400


# --- Cutting and decoding frames -------------------------------------------------------------


def test_frames_of_a_transcoded_file() -> None:
    rle = _file("SC_rgb_rle_2frame.dcm")
    frames = list(generate_frames(_dataset(rle).PixelData, number_of_frames=2))
    assert frames_of_file(rle, [2, 1]) == [frames[1], frames[0]]
    ct = _file("CT_small.dcm")
    assert frames_of_file(ct, [1]) == [_dataset(ct).PixelData]
    with pytest.raises(HttpError):
        frames_of_file(ct, [2])


@pytest.mark.parametrize(("samples", "bits"), [(1, 8), (1, 16), (3, 8), (3, 16)])
def test_rle_frames_decode_to_native_little_endian(samples: int, bits: int) -> None:
    shape = (5, 7, samples) if samples > 1 else (5, 7)
    values = (
        np.random.default_rng(1).integers(0, 2 ** min(bits, 16), shape).astype(f"<u{bits // 8}")
    )
    dataset = pydicom.Dataset()
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.Rows, dataset.Columns, dataset.SamplesPerPixel = 5, 7, samples
    dataset.BitsAllocated = dataset.BitsStored = bits
    dataset.HighBit, dataset.PixelRepresentation = bits - 1, 0
    dataset.PhotometricInterpretation = "RGB" if samples > 1 else "MONOCHROME2"
    if samples > 1:
        dataset.PlanarConfiguration = 0
    dataset.compress(RLELossless, values, encoding_plugin="pydicom")
    [encoded] = generate_frames(dataset.PixelData, number_of_frames=1)
    fmt = PixelFormat(rows=5, columns=7, samples=samples, bits_allocated=bits, bits_stored=bits)
    assert pixel_data.rle_to_native(encoded, fmt) == values.tobytes()  # pixel by pixel


def test_rle_of_unusual_layouts_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        pixel_data.decode_rle(b"\0" * 64, PixelFormat(rows=2, columns=2, bits_allocated=12))
    with pytest.raises(ValueError):
        pixel_data.rle_to_native(b"\1\0\0\0" + b"\0" * 60, PixelFormat(rows=64, columns=64))


def test_stored_form_of_native_syntaxes_is_little_endian() -> None:
    assert is_stored_form("1.2.840.10008.1.2.2", EXPLICIT_LE)
    assert is_stored_form("1.2.840.10008.1.2", EXPLICIT_LE)
    assert is_stored_form(RLE, RLE) and not is_stored_form(RLE, EXPLICIT_LE)
    assert not is_stored_form(EXPLICIT_LE, RLE)


# --- Retrieve Frames ---------------------------------------------------------------------------


def test_stored_frames_are_cut_from_the_file_read_once() -> None:
    rle = _file("SC_rgb_rle_2frame.dcm")
    core = _core(rle)
    content_type, parts = _frames(core, "2,1", "multipart/related; type=image/x-dicom-rle")
    stored = list(generate_frames(_dataset(rle).PixelData, number_of_frames=2))
    assert content_type == f"image/x-dicom-rle; transfer-syntax={RLE}"
    assert parts == [(f"image/x-dicom-rle; transfer-syntax={RLE}", f) for f in stored[::-1]]
    assert _uris(core) == [
        "/tools/lookup",
        "/instances/i/attachments/dicom/info",
        "/instances/i/file",
    ]


def test_rle_frames_asked_uncompressed_are_decoded_without_transcoding() -> None:
    for name in ("SC_rgb_rle_2frame.dcm", "MR_small_RLE.dcm"):
        rle = _file(name)
        core = _core(rle)
        frames = "1,2" if name.startswith("SC") else "1"
        _, parts = _frames(core, frames, OCTET)
        assert {content_type for content_type, _ in parts} == {
            f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
        }
        assert b"".join(frame for _, frame in parts) == _dataset(rle).pixel_array.tobytes()
        assert not any(uri.endswith("/modify") for uri in _uris(core))


def test_without_accept_frames_come_uncompressed() -> None:
    rle = _file("SC_rgb_rle_2frame.dcm")
    for accept in (None, "*/*"):
        content_type, parts = _frames(_core(rle), "1,2", accept)
        assert content_type == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
        assert b"".join(frame for _, frame in parts) == _dataset(rle).pixel_array.tobytes()


def test_a_single_frame_has_its_content_location() -> None:
    _, [part] = _parts(_core(_file("SC_rgb_rle_2frame.dcm")), "2", ANY_SYNTAX)
    instance = f"http://pacs:8042/dicom-web/studies/{STUDY}/series/{SERIES}/instances/{SOP}"
    assert part.content_location == f"{instance}/frames/2"


def test_native_frames_are_cut_from_the_file() -> None:
    dose = _file("rtdose.dcm")
    pixels = _dataset(dose).PixelData
    size = len(pixels) // 15
    _, parts = _frames(_core(dose), "15,3", ANY_SYNTAX)
    assert [frame for _, frame in parts] == [pixels[14 * size :], pixels[2 * size : 3 * size]]


def test_large_files_give_their_frames_through_the_core(monkeypatch) -> None:
    monkeypatch.setattr(frames_module, "FRAMES_WHOLE_FILE_LIMIT", 100)
    rle = _file("SC_rgb_rle_2frame.dcm")
    stored = list(generate_frames(_dataset(rle).PixelData, number_of_frames=2))
    header = {
        "0020,000d": STUDY, "0020,000e": SERIES, "0028,0002": "3", "0028,0004": "RGB",
        "0028,0008": "2", "0028,0010": "100", "0028,0011": "100", "0028,0100": "8",
        "7fe0,0010": None,
    }  # fmt: skip
    core = _core(
        rle,
        {
            ("GET", "/instances/i/tags?short"): header,
            ("GET", "/instances/i/metadata/TransferSyntax"): RLE.encode(),
            ("GET", "/instances/i/frames/1/raw"): stored[1],
        },
    )
    _, [(_, frame)] = _frames(core, "2", OCTET)
    assert frame == _dataset(rle).pixel_array[1].tobytes()
    assert "/instances/i/file" not in _uris(core)


def test_other_syntaxes_are_transcoded_by_the_core() -> None:
    uncompressed = _file("MR_small.dcm")
    core = _core(
        _file("MR_small_jpeg_ls_lossless.dcm"),
        {("POST", "/instances/i/modify"): uncompressed},
    )
    _, [(content_type, frame)] = _frames(core, "1", OCTET)
    assert content_type.endswith(EXPLICIT_LE) and frame == _dataset(uncompressed).PixelData
    assert json.loads(core.calls[-1][2] or b"")["Transcode"] == EXPLICIT_LE


def test_frames_the_core_cannot_decode_are_decoded_by_pydicom() -> None:
    j2k = _file("JPEG2000.dcm")  # signed 16-bit JPEG 2000; this fake core cannot transcode
    for accept in (OCTET, None):
        content_type, [(_, frame)] = _frames(_core(j2k), "1", accept)
        assert content_type == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
        assert frame == _dataset(j2k).pixel_array.tobytes()


def test_frames_nothing_decodes_are_406_or_as_stored_for_any_type() -> None:
    j2k = _file("GDCMJ2K_TextGBR.dcm")  # a code stream Pillow's OpenJPEG refuses
    with pytest.raises(HttpError) as error:
        _frames(_core(j2k), "1", OCTET)
    assert error.value.status == 406
    content_type, [(_, frame)] = _frames(_core(j2k), "1")
    assert content_type == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"
    assert frame == next(generate_frames(_dataset(j2k).PixelData, number_of_frames=1))


def test_undecodable_rle_falls_back_to_the_cores_transcoder() -> None:
    rle = _dataset(_file("MR_small_RLE.dcm"))
    rle.BitsAllocated = 12  # a layout pylibjpeg-rle refuses
    out = BytesIO()
    rle.save_as(out)
    uncompressed = _file("MR_small.dcm")
    core = _core(out.getvalue(), {("POST", "/instances/i/modify"): uncompressed})
    _, [(_, frame)] = _frames(core, "1", OCTET)
    assert frame == _dataset(uncompressed).PixelData


def test_frames_out_of_range_are_400_before_any_pixel_is_cut() -> None:
    core = _core(_file("SC_rgb_rle_2frame.dcm"))
    with pytest.raises(HttpError) as error:
        _frames(core, "1,3")
    assert error.value.status == 400 and error.value.details == {"NumberOfFrames": 2}
    assert not any("/frames/" in uri or "/modify" in uri for uri in _uris(core))


def test_instance_without_pixel_data_is_400() -> None:
    with pytest.raises(HttpError) as error:
        _frames(_core(_file("rtplan.dcm")), "1")
    assert error.value.status == 400


def test_an_instance_of_another_study_is_looked_up_by_a_full_query() -> None:
    elsewhere = _file("CT_small.dcm", study="1.8")
    core = _core(elsewhere, {("POST", "/tools/find"): []})
    with pytest.raises(HttpError) as error:
        _frames(core, "1")
    assert error.value.status == 404
    # A duplicate SOP Instance UID in the named study is found by the full query.
    here = _file("CT_small.dcm")
    core.answers[("POST", "/tools/find")] = [{"ID": "j", "MainDicomTags": {}}]
    core.answers[("GET", "/instances/j/attachments/dicom/info")] = file_info(1000, "file-j")
    core.answers[("GET", "/instances/j/file")] = here
    _, [(_, frame)] = _frames(core, "1")
    assert frame == _dataset(here).PixelData


def test_unknown_instance_is_404() -> None:
    core = FakeCore({("POST", "/tools/lookup"): [], ("POST", "/tools/find"): []})
    with pytest.raises(HttpError) as error:
        _frames(core, "1")
    assert error.value.status == 404
