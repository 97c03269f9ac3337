"""QIDO-RS answers as the official plugin gives them, where Orthanc's own suite checks them:
person name component groups, parent attributes left out when a parent UID is a matching key,
private tags declared in the configuration's `Dictionary`."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import generate_uid

from tests.harness import Orthanc
from tests.integration.test_qido import ROOT, derive, values

PATIENT_NAME, STUDY_DATE, MODALITY = "00100010", "00080020", "00080060"
STUDY_UID, SERIES_UID = "0020000D", "0020000E"


def stored(orthanc: Orthanc, source: Path, **attributes: Any) -> tuple[str, str]:
    """A copy of a file in a new study, series and instance, with these attributes, stored:
    its study and series UIDs."""
    study, series = generate_uid(), generate_uid()
    data, _ = derive(source, study, series, **attributes)
    orthanc.post("/instances", data=data).raise_for_status()
    return study, series


def search(orthanc: Orthanc, path: str, **params: str) -> list[dict[str, Any]]:
    answer = orthanc.get(ROOT + path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_person_names_keep_every_component_group(
    orthanc: Orthanc, test_files: dict[str, Path]
) -> None:
    for name, expected in [
        ("Wang^XiaoDong=王^小东=", {"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小东"}),
        (
            "Yamada^Tarou=山田^太郎=やまだ^たろう",
            {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"},
        ),
        ("Doe^John", {"Alphabetic": "Doe^John"}),
    ]:
        # As bytes: pydicom would drop the trailing empty group of a text value.
        study_uid, _ = stored(
            orthanc, test_files["mr"], SpecificCharacterSet="ISO_IR 192", PatientName=name.encode()
        )
        (study,) = search(orthanc, "studies", StudyInstanceUID=study_uid)
        (value,) = values(study, PATIENT_NAME)
        # An empty group the value holds is kept, as the official plugin answers it.
        assert value == expected | ({"Phonetic": ""} if name.endswith("=") else {})


def test_a_parent_uid_as_matching_key_leaves_that_parents_attributes_out(
    orthanc: Orthanc, test_files: dict[str, Path]
) -> None:
    study, series = stored(
        orthanc, test_files["ct"], PatientName="Parent^Test", StudyDate="20200202"
    )
    (found,) = search(orthanc, "series", StudyInstanceUID=study)
    assert PATIENT_NAME not in found and values(found, SERIES_UID) == [series]
    (found,) = search(orthanc, "series", StudyInstanceUID=study, includefield="00100010,StudyDate")
    assert values(found, STUDY_DATE) == ["20200202"] and PATIENT_NAME in found
    (found,) = search(orthanc, f"studies/{study}/series")  # the path does not count
    assert values(found, PATIENT_NAME) == [{"Alphabetic": "Parent^Test"}]
    (found,) = search(orthanc, "instances", SeriesInstanceUID=series)
    assert MODALITY not in found and PATIENT_NAME in found
    (found,) = search(orthanc, "instances", StudyInstanceUID=study, SeriesInstanceUID=series)
    assert not {MODALITY, PATIENT_NAME} & found.keys() and values(found, STUDY_UID) == [study]
    (found,) = search(orthanc, f"studies/{study}/series/{series}/instances")
    assert values(found, MODALITY) == ["CT"] and PATIENT_NAME in found


def test_private_tags_of_the_configuration_dictionary(
    orthanc_factory: Callable[..., Orthanc], test_files: dict[str, Path]
) -> None:
    orthanc = orthanc_factory(
        {"Dictionary": {"0009,1001": ["DS", "Abnormality score", 1, 1, "Lunit"]}}
    )
    dataset = pydicom.dcmread(test_files["ct"])
    for element in dataset.group_dataset(0x0009):  # GE's: Lunit's block is then 0009,10xx
        del dataset[element.tag]
    dataset.private_block(0x0009, "Lunit", create=True).add_new(0x01, "DS", "98.41")
    dataset.save_as(buffer := io.BytesIO())
    orthanc.post("/instances", data=buffer.getvalue()).raise_for_status()

    (study,) = search(orthanc, "studies")
    assert not {"00090010", "00091001"} & study.keys()
    (study,) = search(orthanc, "studies", includefield="00091001")
    assert study["00091001"] == {"vr": "DS", "Value": [98.41]}
    assert "00090010" not in study  # the creator is only read, not returned
    (study,) = search(orthanc, "studies", **{"00090010": "Lunit", "includefield": "00091001"})
    assert study["00090010"] == {"vr": "LO", "Value": ["Lunit"]}
    assert study["00091001"] == {"vr": "DS", "Value": [98.41]}
    assert search(orthanc, "studies", **{"00090010": "Lunit2"}) == []
