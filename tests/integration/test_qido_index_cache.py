"""QIDO-RS answers stay right while index entries are kept between searches: stores and
deletions between two searches show in the second one, at every level."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.harness import Orthanc
from tests.helpers import store, wait_for
from tests.integration.test_qido import derive, searcher

STUDY_UID, SERIES_UID, MODALITIES = "0020000D", "0020000E", "00080061"
STUDY_SERIES, STUDY_INSTANCES, SERIES_INSTANCES = "00201206", "00201208", "00201209"
PATIENT_NAME = "00100010"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Orthanc:
    from tests.conftest import _start, _stop  # a private Orthanc: this module deletes

    orthanc = _start(tmp_path_factory.mktemp("index-cache"), None, False)
    yield orthanc
    _stop(orthanc)


def store_copy(server: Orthanc, source: Path, study: str, series: str, **values: Any) -> str:
    """Store a copy of `source` in the given study and series; its SOP Instance UID."""
    data, sop = derive(source, study, series, PatientID="CACHE-1", **values)
    store(server, [data])
    return sop


def study_answer(server: Orthanc, study: str) -> dict[str, Any] | None:
    found = searcher(server)("studies", PatientID="CACHE-1", StudyInstanceUID=study)
    return found[0] if found else None


def value(dataset: dict[str, Any] | None, key: str) -> Any:
    assert dataset is not None
    return dataset.get(key, {}).get("Value")


def eventually(check: Callable[[], bool]) -> None:
    """Deletions reach the cache through the core's change callback, a moment later."""
    wait_for(check, timeout=5, interval=0.05)


def orthanc_id(server: Orthanc, uid: str) -> str:
    return server.post("/tools/lookup", data=uid).json()[0]["ID"]


def test_stores_and_deletions_show_in_the_next_search(
    server: Orthanc, test_files: dict[str, Path]
) -> None:
    study, ct_series = generate_uid(), generate_uid()
    first = store_copy(server, test_files["ct"], study, ct_series)
    cold = server.get("/dicom-web/studies", params={"PatientID": "CACHE-1"}).content
    warm = server.get("/dicom-web/studies", params={"PatientID": "CACHE-1"}).content
    assert warm == cold
    assert value(study_answer(server, study), STUDY_INSTANCES) == [1]

    store_copy(server, test_files["ct"], study, ct_series)
    assert value(study_answer(server, study), STUDY_INSTANCES) == [2]

    mr_series = generate_uid()
    store_copy(server, test_files["mr"], study, mr_series)
    answer = study_answer(server, study)
    assert value(answer, MODALITIES) == ["CT", "MR"]
    assert value(answer, STUDY_SERIES) == [2]

    server.delete(f"/instances/{orthanc_id(server, first)}").raise_for_status()
    eventually(lambda: value(study_answer(server, study), STUDY_INSTANCES) == [2])

    server.delete(f"/series/{orthanc_id(server, mr_series)}").raise_for_status()
    eventually(lambda: value(study_answer(server, study), MODALITIES) == ["CT"])

    server.delete(f"/studies/{orthanc_id(server, study)}").raise_for_status()
    eventually(lambda: study_answer(server, study) is None)


def test_series_searches_follow_their_studies(server: Orthanc, test_files: dict[str, Path]) -> None:
    study, series = generate_uid(), generate_uid()
    store_copy(server, test_files["mr"], study, series, PatientName="Before^Name")

    def series_answer() -> dict[str, Any]:
        # The study attributes come with a series only when its study's UID is not a key.
        found = searcher(server)(f"studies/{study}/series", Modality="MR")
        assert len(found) == 1
        return found[0]

    assert value(series_answer(), SERIES_INSTANCES) == [1]
    assert value(series_answer(), PATIENT_NAME) == [{"Alphabetic": "Before^Name"}]
    store_copy(server, test_files["mr"], study, series, PatientName="Before^Name")
    assert value(series_answer(), SERIES_INSTANCES) == [2]

    # The same study stored again after deletion, under another patient name.
    server.delete(f"/studies/{orthanc_id(server, study)}").raise_for_status()
    store_copy(server, test_files["mr"], study, series, PatientName="After^Name")
    eventually(lambda: value(series_answer(), PATIENT_NAME) == [{"Alphabetic": "After^Name"}])


def test_instance_answers_follow_a_stored_again_instance(
    tmp_path_factory: pytest.TempPathFactory, test_files: dict[str, Path]
) -> None:
    from tests.conftest import _start, _stop

    server = _start(tmp_path_factory.mktemp("overwrite"), {"OverwriteInstances": True}, False)
    study, series, sop = generate_uid(), generate_uid(), generate_uid()

    def store_with_rows(rows: int) -> None:
        dataset = pydicom.dcmread(test_files["ct"])
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = sop
        dataset.PatientID, dataset.Rows = "CACHE-2", rows  # Rows: not indexed by the core
        buffer = io.BytesIO()
        dataset.save_as(buffer)
        server.post("/instances", data=buffer.getvalue()).raise_for_status()

    def rows() -> Any:
        found = searcher(server)(f"studies/{study}/series/{series}/instances")
        return [value(d, "00280010") for d in found if value(d, "00080018") == [sop]]

    try:
        store_with_rows(128)
        store_copy(server, test_files["ct"], study, series)
        assert rows() == [[128]] and rows() == [[128]]
        store_with_rows(64)
        eventually(lambda: rows() == [[64]])
    finally:
        _stop(server)
