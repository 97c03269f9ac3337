"""Limits of the Python plugin 4.0 that no plugin code can lift, pinned so that a newer runtime
that lifts them shows up here (then scripts/repeated_query_key.py and the README's limits go)."""

from __future__ import annotations

from pathlib import Path

from tests.harness import Orthanc
from tests.integration.test_qido_fidelity import PATIENT_NAME, STUDY_DATE, STUDY_UID, stored

ROOT = "/dicom-web/"


def test_a_repeated_query_key_reaches_the_plugin_as_its_last_value(
    orthanc: Orthanc, test_files: dict[str, Path]
) -> None:
    study, _ = stored(orthanc, test_files["mr"])
    repeated = (
        f"{ROOT}series?{STUDY_UID}={study}&includefield={PATIENT_NAME}&includefield={STUDY_DATE}"
    )
    (answer,) = orthanc.get(repeated).json()
    assert STUDY_DATE in answer
    assert PATIENT_NAME not in answer  # the runtime kept only includefield=00080020


def test_a_comma_list_asks_for_every_field(orthanc: Orthanc, test_files: dict[str, Path]) -> None:
    study, _ = stored(orthanc, test_files["mr"])
    listed = f"{ROOT}series?{STUDY_UID}={study}&includefield={PATIENT_NAME},{STUDY_DATE}"
    (answer,) = orthanc.get(listed).json()
    assert PATIENT_NAME in answer and STUDY_DATE in answer
