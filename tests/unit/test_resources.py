"""UIDs in paths are validated, and resolved to Orthanc ids with their parents."""

from __future__ import annotations

import json

import pytest

from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.orthanc.resources import ResourcePath, locate, validate_uid
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
