"""WADO-RS Retrieve Study / Series / Instance against a live Orthanc."""

from __future__ import annotations

import socket
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit

import numpy
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from tests.harness import Orthanc
from tests.helpers import derived, parts_of, store

EXPLICIT_LE = "1.2.840.10008.1.2.1"
JPEG_LS = "1.2.840.10008.1.2.4.80"
# Not JPEG-LS: it is never produced, its encoder crashes Orthanc 1.10.1 (test_transcoding_safety).
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
KEEP = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def uids(dicom: bytes) -> tuple[str, str, str]:
    dataset = pydicom.dcmread(BytesIO(dicom), stop_before_pixels=True)
    return dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID


@pytest.fixture(scope="module")
def study(orthanc: Orthanc, test_files: dict[str, Path]) -> dict[str, bytes]:
    """A study of a CT, a JPEG-LS MR and a 2-frame RLE image, each in its own series."""
    uid = generate_uid()
    files = {
        role: derived(test_files[role], uid) for role in ("ct", "mr_jpeg_ls", "multiframe_rgb")
    }
    store(orthanc, list(files.values()))
    return files


def test_transfer_syntax_star_returns_the_stored_files_byte_for_byte(orthanc, study) -> None:
    study_uid = uids(study["ct"])[0]
    answer = orthanc.get(f"/dicom-web/studies/{study_uid}", headers={"Accept": KEEP})
    assert answer.headers["Content-Type"].startswith('multipart/related; type="application/dicom"')
    assert sorted(parts_of(answer)) == sorted(study.values())


def test_default_is_explicit_little_endian_with_unchanged_uids(orthanc, study, test_files) -> None:
    study_uid = uids(study["ct"])[0]
    parts = parts_of(orthanc.get(f"/dicom-web/studies/{study_uid}"))
    datasets = {uids(part)[2]: pydicom.dcmread(BytesIO(part)) for part in parts}
    assert set(datasets) == {uids(dicom)[2] for dicom in study.values()}
    assert {str(d.file_meta.TransferSyntaxUID) for d in datasets.values()} == {EXPLICIT_LE}
    # The lossless JPEG-LS MR decodes to the pixels of the uncompressed original.
    mr = datasets[uids(study["mr_jpeg_ls"])[2]]
    original = pydicom.dcmread(test_files["mr"])
    assert numpy.array_equal(mr.pixel_array, original.pixel_array)


def test_an_explicit_syntax_is_produced_by_the_core(orthanc, study) -> None:
    study_uid, series_uid, sop_uid = uids(study["ct"])
    accept = f"multipart/related; type=application/dicom; transfer-syntax={JPEG_LOSSLESS}"
    url = f"/dicom-web/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
    [part] = parts_of(orthanc.get(url, headers={"Accept": accept}))
    dataset = pydicom.dcmread(BytesIO(part))
    assert dataset.file_meta.TransferSyntaxUID == JPEG_LOSSLESS
    assert dataset.SOPInstanceUID == sop_uid


def without_pixels(dataset: pydicom.Dataset) -> dict[int, pydicom.DataElement]:
    """The attributes decompression may not change (the planar layout is DCMTK's choice)."""
    changing = ("PixelData", "PlanarConfiguration")
    return {element.tag: element for element in dataset if element.keyword not in changing}


@pytest.mark.official
def test_rle_to_explicit_little_endian_keeps_everything_like_the_official_plugin(
    orthanc, official, study, test_files
) -> None:
    """The in-memory transcoder keeps every attribute and the pixels, as the official does."""
    rle = study["multiframe_rgb"]
    store(official, [rle])
    study_uid, series_uid, sop_uid = uids(rle)
    url = f"/dicom-web/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
    [part] = parts_of(orthanc.get(url))
    [theirs] = parts_of(official.get(url))
    ours, original = pydicom.dcmread(BytesIO(part)), pydicom.dcmread(BytesIO(rle))
    assert ours.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert without_pixels(ours) == without_pixels(original)
    assert numpy.array_equal(ours.pixel_array, original.pixel_array)
    assert ours == pydicom.dcmread(BytesIO(theirs))


def test_series_and_instance_levels(orthanc, study) -> None:
    study_uid, series_uid, sop_uid = uids(study["mr_jpeg_ls"])
    series = parts_of(
        orthanc.get(f"/dicom-web/studies/{study_uid}/series/{series_uid}", headers={"Accept": KEEP})
    )
    assert series == [study["mr_jpeg_ls"]]
    url = f"/dicom-web/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
    assert parts_of(orthanc.get(url, headers={"Accept": KEEP})) == [study["mr_jpeg_ls"]]


@pytest.mark.parametrize(
    ("accept", "syntax"),
    [
        ("multipart/related; type=application/dicom; transfer-syntax=*", JPEG_LS),
        ('multipart/related;type="application/dicom";transfer-syntax="*"', JPEG_LS),
        (f"multipart/related; type=application/dicom; transfer-syntax={EXPLICIT_LE}", EXPLICIT_LE),
        ("*/*", EXPLICIT_LE),
        ("multipart/related", EXPLICIT_LE),
        (
            f"image/png, {KEEP}; q=0.3, multipart/related; type=application/dicom; q=0.9",
            EXPLICIT_LE,
        ),
        (
            "multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90, "
            f"{KEEP}; q=0.1",
            JPEG_LS,
        ),
    ],
)
def test_accept_variants_of_real_clients(orthanc, study, accept: str, syntax: str) -> None:
    study_uid, series_uid, _ = uids(study["mr_jpeg_ls"])
    url = f"/dicom-web/studies/{study_uid}/series/{series_uid}"
    [part] = parts_of(orthanc.get(url, headers={"Accept": accept}))
    assert pydicom.dcmread(BytesIO(part)).file_meta.TransferSyntaxUID == syntax


def test_errors_are_clear_json_answers(orthanc, study) -> None:
    study_uid, series_uid, _ = uids(study["ct"])
    other_series = uids(study["mr_jpeg_ls"])[1]
    cases = [
        (f"/dicom-web/studies/{generate_uid()}", KEEP, 404),
        (f"/dicom-web/studies/{generate_uid()}/series/{series_uid}", KEEP, 404),
        (
            f"/dicom-web/studies/{study_uid}/series/{series_uid}/instances/{generate_uid()}",
            KEEP,
            404,
        ),
        ("/dicom-web/studies/1.2.abc", KEEP, 400),
        (f"/dicom-web/studies/{study_uid}/series/{'1' * 65}", KEEP, 400),
        # An Accept allowing no DICOM part: 400, as the official plugin (Orthanc's suite).
        (f"/dicom-web/studies/{study_uid}", "image/png", 400),
        (f"/dicom-web/studies/{study_uid}", "multipart/nope", 400),
        (
            f"/dicom-web/studies/{study_uid}",
            "multipart/related; type=application/dicom; transfer-syntax=1.2.3",
            400,
        ),
        # The core cannot write JPEG 2000 and nothing here is stored in it.
        (
            f"/dicom-web/studies/{study_uid}/series/{other_series}",
            "multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90",
            406,
        ),
        (f"/dicom-web/studies/{study_uid}", "multipart/related; type=application/dicom; q=x", 400),
    ]
    for url, accept, status in cases:
        answer = orthanc.get(url, headers={"Accept": accept})
        assert answer.status_code == status, (url, accept, answer.text)
        assert answer.json()["HttpStatus"] == status
        assert answer.json()["Message"]


def test_a_series_uid_in_two_studies_is_found_in_the_named_one(orthanc, test_files) -> None:
    series = generate_uid()
    first, second = (
        derived(test_files["ct"], generate_uid(), series),
        derived(test_files["mr"], generate_uid(), series),
    )
    store(orthanc, [first, second])
    for dicom in (first, second):
        study_uid = uids(dicom)[0]
        url = f"/dicom-web/studies/{study_uid}/series/{series}"
        assert parts_of(orthanc.get(url, headers={"Accept": KEEP})) == [dicom]


def test_dicomweb_client_decodes_study_series_and_instance(orthanc, study) -> None:
    client = DICOMwebClient(orthanc.url + "/dicom-web")
    study_uid, series_uid, sop_uid = uids(study["mr_jpeg_ls"])
    retrieved = client.retrieve_study(study_uid)
    assert {d.SOPInstanceUID for d in retrieved} == {uids(f)[2] for f in study.values()}
    [series] = client.retrieve_series(study_uid, series_uid)
    assert series.SOPInstanceUID == sop_uid
    assert series.file_meta.TransferSyntaxUID == EXPLICIT_LE
    instance = client.retrieve_instance(
        study_uid, series_uid, sop_uid, media_types=(("application/dicom", "*"),)
    )
    assert instance.file_meta.TransferSyntaxUID == JPEG_LS


def test_a_client_leaving_mid_stream_does_not_stick_the_plugin(orthanc, test_files) -> None:
    study_uid = generate_uid()
    store(orthanc, [derived(test_files["palette"], study_uid) for _ in range(12)])  # ~3 MB
    address = urlsplit(orthanc.url)
    for _ in range(3):
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            request = (
                f"GET /dicom-web/studies/{study_uid} HTTP/1.1\r\nHost: x\r\nAccept: {KEEP}\r\n\r\n"
            )
            sock.sendall(request.encode())
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    answer = orthanc.get(f"/dicom-web/studies/{study_uid}", headers={"Accept": KEEP})
    assert len(parts_of(answer)) == 12


@pytest.mark.official
def test_the_official_plugin_retrieves_from_this_one(orthanc, study, orthanc_factory) -> None:
    official = orthanc_factory(
        {"DicomWeb": {"Servers": {"py": [orthanc.url + "/dicom-web/"]}}}, official=True
    )
    study_uid = uids(study["ct"])[0]
    answer = official.post(
        "/dicom-web/servers/py/retrieve", json={"Resources": [{"Study": study_uid}]}
    )
    assert answer.status_code == 200, answer.text
    stored = official.post(
        "/tools/find", json={"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}}
    )
    files = sorted(official.get(f"/instances/{i}/file").content for i in stored.json())
    assert files == sorted(study.values())  # transfer-syntax=*: stored syntaxes kept


def test_jpeg_2000_without_a_decoder_in_the_core_is_406_unless_kept(orthanc, test_files) -> None:
    dicom = derived(test_files["jpeg2000"], generate_uid())
    store(orthanc, [dicom])
    study_uid, series_uid, sop_uid = uids(dicom)
    url = f"/dicom-web/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
    refused = orthanc.get(url)
    assert refused.status_code == 406
    assert "1.2.840.10008.1.2.1" in refused.json()["Message"]
    assert parts_of(orthanc.get(url, headers={"Accept": KEEP})) == [dicom]
    accept = "multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.4.91"
    assert parts_of(orthanc.get(url, headers={"Accept": accept})) == [dicom]


def test_files_compressed_before_compression_was_turned_off_are_sent_whole(
    orthanc_factory, test_files: dict[str, Path]
) -> None:
    """The series listing does not say whether a file is compressed: such files go through
    the core (storage_files.read_listed), uncompressed ones are read from the folder."""
    orthanc = orthanc_factory({"StorageCompression": True})
    study, series = generate_uid(), generate_uid()
    compressed = [derived(test_files["ct"], study, series) for _ in range(3)]
    store(orthanc, compressed)
    orthanc.config["StorageCompression"] = False
    orthanc.restart()
    plain = [derived(test_files["ct"], study, series) for _ in range(2)]
    store(orthanc, plain)
    answer = orthanc.get(f"/dicom-web/studies/{study}/series/{series}", headers={"Accept": KEEP})
    assert sorted(parts_of(answer)) == sorted(compressed + plain)


def test_a_series_whose_files_left_the_storage_folder_is_read_through_the_core(
    orthanc_factory, test_files: dict[str, Path]
) -> None:
    """Files listed but not in the folder (kept elsewhere by a storage plugin, deleted
    meanwhile): each is asked from the core, here answered from its storage cache, which keeps
    the files it has just stored."""
    orthanc = orthanc_factory()
    study, series = generate_uid(), generate_uid()
    files = [derived(test_files["ct"], study, series) for _ in range(3)]
    store(orthanc, files)
    storage = Path(orthanc.config["StorageDirectory"])
    moved = storage.parent / "moved"
    storage.rename(moved)
    storage.mkdir()
    try:
        answer = orthanc.get(
            f"/dicom-web/studies/{study}/series/{series}", headers={"Accept": KEEP}
        )
        assert sorted(parts_of(answer)) == sorted(files)
    finally:
        storage.rmdir()
        moved.rename(storage)
