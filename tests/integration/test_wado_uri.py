"""WADO-URI against a live Orthanc: images, DICOM, transcoding, anonymization, errors."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from tests.harness import Orthanc


@pytest.fixture(scope="module")
def ct(orthanc: Orthanc, test_files) -> pydicom.Dataset:
    dataset = pydicom.dcmread(test_files["ct"])
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    orthanc.post("/instances", data=_saved(dataset)).raise_for_status()
    return dataset


def _wado(orthanc: Orthanc, dataset: pydicom.Dataset, **params: str):
    query = {
        "requestType": "WADO",
        "studyUID": dataset.StudyInstanceUID,
        "seriesUID": dataset.SeriesInstanceUID,
        "objectUID": dataset.SOPInstanceUID,
        **params,
    }
    return orthanc.get("/wado", params={k: v for k, v in query.items() if v is not None})


def _image(answer) -> Image.Image:
    assert answer.status_code == 200, answer.text
    return Image.open(io.BytesIO(answer.content))


def test_default_is_jpeg_and_png_matches_rendered(orthanc: Orthanc, ct) -> None:
    assert _image(_wado(orthanc, ct)).format == "JPEG"
    png = np.asarray(_image(_wado(orthanc, ct, contentType="image/png")))
    url = (
        f"/dicom-web/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}"
        f"/instances/{ct.SOPInstanceUID}/rendered"
    )
    rendered = np.asarray(_image(orthanc.get(url, headers={"Accept": "image/png"})))
    assert np.array_equal(png, rendered)


def test_window_region_size_and_gif(orthanc: Orthanc, ct) -> None:
    windowed = _wado(orthanc, ct, contentType="image/png", windowCenter="0", windowWidth="1")
    hu = ct.pixel_array.astype(int) + int(ct.RescaleIntercept)
    # The core's mapping (see below): 255 (hu - c + w/2) / w, truncated.
    assert np.array_equal(np.asarray(_image(windowed)), np.select([hu >= 1, hu == 0], [255, 127]))
    region = _image(_wado(orthanc, ct, region="0,0,0.5,0.25", columns="32"))
    assert region.size == (32, 16)
    assert _image(_wado(orthanc, ct, rows="64", imageQuality="20")).size == (64, 64)
    assert _image(_wado(orthanc, ct, contentType="image/gif", annotation="patient")).format == "GIF"


@pytest.mark.parametrize(("photometric", "slope"), [("MONOCHROME2", 1), ("MONOCHROME1", 2.5)])
def test_images_are_the_cores_rendering_to_the_bit(
    orthanc: Orthanc, ct, photometric: str, slope: float
) -> None:
    """As the official plugin's WADO-URI: the file's window or windowCenter/windowWidth
    applied as the core's /rendered does (image/jpg is a name for JPEG)."""
    windowed = pydicom.dcmread(io.BytesIO(_saved(ct)))
    windowed.SOPInstanceUID = windowed.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    windowed.WindowCenter, windowed.WindowWidth = 40, 350
    windowed.PhotometricInterpretation, windowed.RescaleSlope = photometric, slope
    orthanc_id = orthanc.post("/instances", data=_saved(windowed)).json()["ID"]
    core = f"/instances/{orthanc_id}/rendered"
    cases = [
        ({}, {}),
        (
            {"windowCenter": "-100", "windowWidth": "301"},
            {"window-center": -100, "window-width": 301},
        ),
    ]
    for window, core_window in cases:
        for content_type, accept in (("image/png", "image/png"), ("image/jpg", "image/jpeg")):
            ours = _image(_wado(orthanc, windowed, contentType=content_type, **window))
            theirs = _image(orthanc.get(core, params=core_window, headers={"Accept": accept}))
            assert ours.format == theirs.format
            assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_dicom_as_stored_transcoded_and_anonymized(orthanc: Orthanc, ct) -> None:
    stored = _wado(orthanc, ct, contentType="application/dicom")
    assert stored.headers["Content-Type"] == "application/dicom"
    assert pydicom.dcmread(io.BytesIO(stored.content)).SOPInstanceUID == ct.SOPInstanceUID
    jpeg_lossless = "1.2.840.10008.1.2.4.70"
    answer = _wado(orthanc, ct, contentType="application/dicom", transferSyntax=jpeg_lossless)
    transcoded = pydicom.dcmread(io.BytesIO(answer.content))
    assert transcoded.file_meta.TransferSyntaxUID == jpeg_lossless
    assert transcoded.SOPInstanceUID == ct.SOPInstanceUID
    answer = _wado(orthanc, ct, contentType="application/dicom", anonymize="yes")
    anonymized = pydicom.dcmread(io.BytesIO(answer.content))
    assert anonymized.PatientName != ct.PatientName
    assert anonymized.SOPInstanceUID != ct.SOPInstanceUID


def test_frame_number(orthanc: Orthanc, ct) -> None:
    assert _wado(orthanc, ct, frameNumber="1").status_code == 200
    assert _wado(orthanc, ct, frameNumber="2").status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {"requestType": None},
        {"requestType": "WADO-RS"},
        {"objectUID": None},
        {"objectUID": "not-a-uid"},
        {"seriesUID": "1.2.3"},
        {"studyUID": "1.2.3"},
        {"contentType": "text/plain"},
        {"rows": "0"},
        {"region": "0,0,2,2"},
        {"windowCenter": "40"},
        {"windowCenter": "40", "windowWidth": "-4"},
        {"imageQuality": "500"},
        {"annotation": "everything"},
        {"frameNumber": "0"},
        {"anonymize": "maybe", "contentType": "application/dicom"},
        {"transferSyntax": "1.2.3.4", "contentType": "application/dicom"},
        {"transferSyntax": "1.2.840.10008.1.2.1"},
        {"presentationUID": "1.2.3"},
    ],
)
def test_bad_requests_are_400_with_a_message(orthanc: Orthanc, ct, params) -> None:
    answer = _wado(orthanc, ct, **params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["Message"]


def test_unknown_object_is_404(orthanc: Orthanc, ct) -> None:
    answer = _wado(orthanc, ct, objectUID="1.2.3.4.5.6.7", seriesUID=None, studyUID=None)
    assert answer.status_code == 404


def test_disabled_wado_is_not_served(orthanc_factory) -> None:
    disabled = orthanc_factory({"DicomWeb": {"EnableWado": False}})
    assert disabled.get("/wado", params={"requestType": "WADO"}).status_code == 404


def test_an_image_stored_again_is_rendered_from_its_new_pixels(orthanc_factory, ct) -> None:
    """Parsed files are kept between requests by storage uuid: an overwrite is seen at once."""
    overwriting = orthanc_factory({"OverwriteInstances": True})

    def store_and_render(dataset: pydicom.Dataset) -> np.ndarray:
        overwriting.post("/instances", data=_saved(dataset)).raise_for_status()
        first = np.asarray(_image(_wado(overwriting, dataset, contentType="image/png")))
        again = np.asarray(_image(_wado(overwriting, dataset, contentType="image/png")))
        assert np.array_equal(first, again)
        return first

    original = store_and_render(ct)
    inverted = pydicom.dcmread(io.BytesIO(_saved(ct)))
    inverted.PhotometricInterpretation = "MONOCHROME1"
    difference = store_and_render(inverted).astype(int) - (255 - original.astype(int))
    assert np.abs(difference).max() <= 1  # rounding of .5 values only


def _saved(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
