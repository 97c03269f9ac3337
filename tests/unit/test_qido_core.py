"""What the core's `/tools/find` is given for each matching key, and when its answer is exact."""

from __future__ import annotations

import pytest

from orthanc_dicomweb.services.qido.core_filter import CoreQuery, core_query
from orthanc_dicomweb.services.qido.matching import parse_matcher

PATIENT_NAME, STUDY_DATE, STUDY_TIME = 0x00100010, 0x00080020, 0x00080030


def query(case_sensitive: bool = False, **keys: str) -> CoreQuery:
    return core_query([parse_matcher(k, v) for k, v in keys.items()], case_sensitive)


@pytest.mark.parametrize(
    ("key", "value", "constraint", "exact"),
    [
        ("StudyInstanceUID", "1.2,1.3", "1.2\\1.3", True),
        ("StudyDate", "20200101", "20200101", True),
        ("StudyDate", "20200101-20201231", "20200101-20201231", True),
        ("StudyDate", "20200101-", "20200101-", True),
        ("StudyDate", "-20201231", "-20201231", False),  # the core also finds empty dates
        ("StudyTime", "1015", "10-10~", False),  # widened to whole hours
        ("StudyTime", "0800-123000.5", "08-12~", False),
        ("StudyTime", "-12", "-12~", False),
        ("StudyTime", "08-", "08-", False),
        ("AcquisitionDateTime", "2020-20210601", "2020-2021~", False),
        ("AccessionNumber", "ACC*", "ACC*", True),
        ("AccessionNumber", "A?C", "A*C", False),  # the core's "?" is one byte
        ("Modality", "CT", "CT", True),
        ("ModalitiesInStudy", "CT,MR", "CT\\MR", True),
        ("ModalitiesInStudy", "C*", None, False),  # a literal list for the core
        ("ModalitiesInStudy", "CT", "CT", True),  # one Modality per series: not multi-valued
        # Multi-valued: the core matches the whole text, one value matching is enough.
        ("OtherPatientIDs", "X1", "*X1*", False),
        ("OtherPatientIDs", "X?1*", "*X*1**", False),
        ("ImagePositionPatient", "0", None, False),  # DS: no wildcard to widen with
    ],
)
def test_constraints_and_exactness(
    key: str, value: str, constraint: str | None, exact: bool
) -> None:
    found = query(**{key: value})
    assert list(found.constraints.values()) == ([] if constraint is None else [constraint])
    assert found.exact is exact
    assert found.case_sensitive  # no PN key: the core matches every VR case-sensitively


def test_case_insensitive_person_names() -> None:
    found = query(PatientName="doe^j*")
    assert found.constraints == {PATIENT_NAME: "doe^j*"} and not found.case_sensitive
    assert found.exact  # ASCII: the core folds its case like the standard's reading
    found = query(PatientName="Гусева*")  # the core's database folds ASCII only
    assert found.constraints == {PATIENT_NAME: "*******"} and not found.exact
    assert query(PatientName="王*").exact  # no case to fold


def test_case_insensitive_names_make_the_other_keys_loose() -> None:
    found = query(PatientName="Doe*", AccessionNumber="ACC1", StudyInstanceUID="1.2")
    assert not found.case_sensitive
    assert [m.vr for m in found.inexact] == ["SH"]  # UIDs have no case


def test_case_sensitive_configuration() -> None:
    found = query(True, PatientName="Гусева*", AccessionNumber="ACC1")
    assert found.case_sensitive and found.exact
    assert found.constraints == {PATIENT_NAME: "Гусева*", 0x00080050: "ACC1"}
