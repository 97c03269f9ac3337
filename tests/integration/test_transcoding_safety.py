"""A client must not crash Orthanc through the plugin: JPEG-LS, whose encoder in Orthanc
1.10.1 corrupts the heap on small images (SC_rgb_small_odd.dcm crashed the core within two
transcodings in 7 of 7 runs), is never asked of the core (README, Limits)."""

from __future__ import annotations

from collections.abc import Callable

import pydicom
import pytest
import requests

from tests.harness import PYDICOM_FILES, Orthanc, orthanc_available

pytestmark = pytest.mark.skipif(not orthanc_available(), reason="Orthanc is not installed")

JPEG_LS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
REPEATS = 10  # the core crashed at the first or second of these before


@pytest.fixture
def orthanc(orthanc_factory: Callable[..., Orthanc]) -> Orthanc:
    """An Orthanc of its own: were it to crash, no other test would lose its server."""
    instance = orthanc_factory()
    instance.upload([PYDICOM_FILES / "SC_rgb_small_odd.dcm"])
    instance.upload([PYDICOM_FILES / "MR_small_jpeg_ls_lossless.dcm"])
    return instance


def instance_url(name: str) -> str:
    dataset = pydicom.dcmread(PYDICOM_FILES / name, stop_before_pixels=True)
    uids = (dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)
    return "/dicom-web/studies/{}/series/{}/instances/{}".format(*uids)


def dicom_accept(syntax: str) -> dict[str, str]:
    return {"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={syntax}'}


def assert_alive(orthanc: Orthanc) -> None:
    assert orthanc.process is not None and orthanc.process.poll() is None, orthanc.log_tail()
    assert orthanc.get("/system").status_code == 200


def assert_refused(answer: requests.Response, status: int = 406) -> None:
    assert answer.status_code == status, answer.text
    assert "JPEG-LS" in answer.json().get("Details", answer.json()["Message"])


@pytest.mark.parametrize("syntax", [JPEG_LS_NEAR_LOSSLESS, JPEG_LS])
def test_retrieve_in_jpeg_ls_is_406_and_orthanc_lives(orthanc: Orthanc, syntax: str) -> None:
    url = instance_url("SC_rgb_small_odd.dcm")
    for _ in range(REPEATS):
        assert_refused(orthanc.get(url, headers=dicom_accept(syntax)))
    assert_alive(orthanc)


def test_a_next_accepted_syntax_is_sent_instead(orthanc: Orthanc) -> None:
    accept = dicom_accept(JPEG_LS_NEAR_LOSSLESS)["Accept"] + ", multipart/related; q=0.5"
    answer = orthanc.get(instance_url("SC_rgb_small_odd.dcm"), headers={"Accept": accept})
    assert answer.status_code == 200
    assert EXPLICIT_LE.encode() in answer.content[:1000]


def test_frames_as_jpeg_ls_are_406_and_orthanc_lives(orthanc: Orthanc) -> None:
    url = instance_url("SC_rgb_small_odd.dcm") + "/frames/1"
    for accept in ("multipart/related; type=image/jls", dicom_accept(JPEG_LS)["Accept"]):
        for _ in range(REPEATS):
            assert orthanc.get(url, headers={"Accept": accept}).status_code == 406
    assert_alive(orthanc)


def test_wado_uri_in_jpeg_ls_is_400_and_orthanc_lives(orthanc: Orthanc) -> None:
    dataset = pydicom.dcmread(PYDICOM_FILES / "SC_rgb_small_odd.dcm", stop_before_pixels=True)
    query = {
        "requestType": "WADO",
        "studyUID": dataset.StudyInstanceUID,
        "seriesUID": dataset.SeriesInstanceUID,
        "objectUID": dataset.SOPInstanceUID,
        "contentType": "application/dicom",
        "transferSyntax": JPEG_LS_NEAR_LOSSLESS,
    }
    for _ in range(REPEATS):
        assert_refused(orthanc.get("/wado", params=query), status=400)
    assert_alive(orthanc)


def test_an_instance_stored_in_jpeg_ls_is_still_sent(orthanc: Orthanc) -> None:
    url = instance_url("MR_small_jpeg_ls_lossless.dcm")
    answer = orthanc.get(url, headers=dicom_accept(JPEG_LS))
    assert answer.status_code == 200
    assert JPEG_LS.encode() in answer.content[:1000]
