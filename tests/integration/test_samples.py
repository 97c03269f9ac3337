"""Each Python sample of `samples/`, run as a user would, against a live Orthanc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from tests.harness import REPO, Orthanc

SAMPLES = REPO / "samples"


def run_sample(name: str, *args: str | Path) -> str:
    completed = subprocess.run(
        [sys.executable, str(SAMPLES / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed.stdout


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, test_files: dict[str, Path]) -> dict[str, Any]:
    """Two instances of one new study, and a file that is not DICOM."""
    folder = tmp_path_factory.mktemp("upload")
    patient = f"SAMPLE-{generate_uid()[-8:]}"
    study, series = generate_uid(), generate_uid()
    instances = []
    for number in (1, 2):
        dataset = pydicom.dcmread(test_files["ct"])
        dataset.PatientID = patient
        dataset.PatientName = patient.replace("-", "^")
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.InstanceNumber = number
        dataset.save_as(folder / f"ct{number}.dcm")
        instances.append(dataset.SOPInstanceUID)
    (folder / "README.txt").write_text("not DICOM")
    return {
        "path": folder,
        "patient": patient,
        "study": study,
        "series": series,
        "instances": instances,
    }


@pytest.fixture(scope="module")
def uploaded(orthanc: Orthanc, folder: dict[str, Any]) -> dict[str, Any]:
    output = run_sample(
        "stow_upload_folder.py", folder["path"], "--url", orthanc.url + "/dicom-web", "--batch", "1"
    )
    assert "Done: 2 stored, 0 failed, out of 2 files" in output
    return folder


def test_stow_upload_folder_stores_the_dicom_files(orthanc: Orthanc, uploaded: dict) -> None:
    found = orthanc.post(
        "/tools/find", json={"Level": "Instance", "Query": {"PatientID": uploaded["patient"]}}
    ).json()
    assert len(found) == 2


def test_stow_upload_folder_refuses_an_empty_folder(orthanc: Orthanc, tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(SAMPLES / "stow_upload_folder.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert "No DICOM file" in completed.stderr


def test_qido_search_prints_the_study(orthanc: Orthanc, uploaded: dict) -> None:
    url = orthanc.url + "/dicom-web"
    output = run_sample("qido_search.py", "--url", url, "--patient-id", uploaded["patient"])
    assert uploaded["study"] in output
    assert output.strip().endswith("1 studies")


def test_wado_retrieve_study_saves_every_instance(
    orthanc: Orthanc, uploaded: dict, tmp_path: Path
) -> None:
    url = orthanc.url + "/dicom-web"
    output = run_sample("wado_retrieve_study.py", uploaded["study"], tmp_path, "--url", url)
    assert "Saved 2 instances" in output
    saved = sorted(tmp_path.rglob("*.dcm"))
    assert {path.stem for path in saved} == set(uploaded["instances"])
    assert all(pydicom.dcmread(path).StudyInstanceUID == uploaded["study"] for path in saved)


def test_series_metadata_lists_the_instances(orthanc: Orthanc, uploaded: dict) -> None:
    url = orthanc.url + "/dicom-web"
    output = run_sample("series_metadata.py", uploaded["study"], uploaded["series"], "--url", url)
    lines = output.strip().splitlines()
    assert lines[-1] == "2 instances"
    assert lines[1].startswith(f"1\t{uploaded['instances'][0]}\t128x128")


def test_rendered_frame_png_writes_a_png(orthanc: Orthanc, uploaded: dict, tmp_path: Path) -> None:
    output_file = tmp_path / "frame.png"
    run_sample(
        "rendered_frame_png.py",
        uploaded["study"],
        uploaded["series"],
        uploaded["instances"][0],
        output_file,
        "--url",
        orthanc.url + "/dicom-web",
    )
    with Image.open(output_file) as image:
        assert image.format == "PNG"
        assert image.size == (128, 128)


def test_every_sample_documents_its_usage() -> None:
    for script in SAMPLES.glob("*.py"):
        assert "Usage:" in script.read_text(), script.name
        completed = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60
        )
        assert completed.returncode == 0 and "usage:" in completed.stdout, script.name
    page = (SAMPLES / "javascript" / "index.html").read_text()
    assert "Usage:" in page
