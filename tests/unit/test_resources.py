"""UIDs in paths are validated, and resolved to Orthanc ids with their parents."""

from __future__ import annotations

import json

import pytest
from pydicom.dataset import Dataset

from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.orthanc.resources import (
    ResourcePath,
    find_resources,
    locate,
    locate_resource,
    validate_uid,
)
from tests.datasets import identified, part10
from tests.fake_core import SdkCore
from tests.unit.fakes import FakeCore


@pytest.mark.parametrize("uid", ["1.2.840.10008.1.2", "1", "2.25.123456789"])
def test_valid_uids(uid: str) -> None:
    assert validate_uid(uid) == uid


@pytest.mark.parametrize("uid", ["", "1..2", "1.2.", "abc", "1.2/../3", "1" * 65, ".1"])
def test_malformed_uids_are_400(uid: str) -> None:
    with pytest.raises(HttpError) as raised:
        validate_uid(uid)
    assert raised.value.status == 400


def test_path_levels() -> None:
    assert ResourcePath.from_groups(("1.2",)).level == "Study"
    assert ResourcePath.from_groups(("1.2", "1.3")).level == "Series"
    assert ResourcePath.from_groups(("1.2", "1.3", "1.4")).level == "Instance"


def test_locate_asks_with_every_parent_uid() -> None:
    def find(body: bytes) -> list[str]:
        query = json.loads(body)
        assert query["Level"] == "Series"
        assert query["Query"] == {"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.3"}
        return ["series-id"]

    core = FakeCore({("POST", "/tools/find"): find})
    assert locate(core, ResourcePath("1.2", "1.3")) == "series-id"


def test_unknown_resource_is_404() -> None:
    core = FakeCore({("POST", "/tools/find"): []})
    with pytest.raises(HttpError) as raised:
        locate(core, ResourcePath("1.2"))
    assert raised.value.status == 404
    assert "study 1.2" in raised.value.message


# With the SDK's lookups (`core.UidLookup`), one resource is found by its own UID, its parents
# read by id; `/tools/find` only when the index cannot tell (unknown UID, or several).


def sdk_core(*datasets: Dataset) -> SdkCore:
    return SdkCore(files=[part10(dataset) for dataset in datasets])


def finds(core: SdkCore) -> int:
    return core.uris("POST").count("/tools/find")


def test_sdk_lookups_locate_each_level_with_its_parents() -> None:
    dataset = identified()
    core = sdk_core(dataset, identified())
    study, series = dataset.StudyInstanceUID, dataset.SeriesInstanceUID
    instance = ResourcePath(study, series, dataset.SOPInstanceUID)
    assert locate(core, ResourcePath(study)) == core.id_of(study)
    assert locate(core, ResourcePath(study, series)) == core.id_of(series)
    assert locate_resource(core, instance)["ID"] == core.id_of(dataset.SOPInstanceUID)
    assert finds(core) == 0


def test_sdk_lookups_give_a_study_its_series() -> None:
    first = identified()
    second = identified(StudyInstanceUID=first.StudyInstanceUID)
    core = sdk_core(first, second, identified())
    found = find_resources(core, ResourcePath(first.StudyInstanceUID), "Series")
    expected = {core.id_of(first.SeriesInstanceUID), core.id_of(second.SeriesInstanceUID)}
    assert {series["ID"] for series in found} == expected
    assert finds(core) == 0


def test_sdk_lookups_refuse_a_resource_under_other_parents() -> None:
    dataset, other = identified(), identified()
    core = sdk_core(dataset, other)
    series, sop = dataset.SeriesInstanceUID, dataset.SOPInstanceUID
    for path in (
        ResourcePath(other.StudyInstanceUID, series),
        ResourcePath(other.StudyInstanceUID, series, sop),
        ResourcePath(dataset.StudyInstanceUID, other.SeriesInstanceUID, sop),
    ):
        with pytest.raises(HttpError) as raised:
            locate(core, path)
        assert raised.value.status == 404
    assert finds(core) == 0


def test_sdk_lookups_leave_unknown_and_repeated_uids_to_find() -> None:
    dataset = identified(PatientID="A")
    twin = identified(PatientID="B", StudyInstanceUID=dataset.StudyInstanceUID)
    core = sdk_core(dataset, twin)
    with pytest.raises(HttpError) as raised:
        locate(core, ResourcePath(dataset.StudyInstanceUID))
    assert raised.value.status == 409  # two patients' studies: the core's index names neither
    with pytest.raises(HttpError) as raised:
        locate(core, ResourcePath("1.2.3"))
    assert raised.value.status == 404
    assert finds(core) == 2
