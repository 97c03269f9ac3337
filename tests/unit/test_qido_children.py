"""IndexEntries.children_of takes the parents from the series the request found for its ETag
(`request_scope`) instead of locating them again with another `/tools/find`."""

from __future__ import annotations

import json
from typing import Any

from orthanc_dicomweb.orthanc.index_cache import IndexCache
from orthanc_dicomweb.orthanc.request_scope import found_resources, request_scope
from orthanc_dicomweb.orthanc.resources import ResourcePath
from orthanc_dicomweb.services.qido.index import IndexEntries
from tests.unit.fakes import FakeCore

SERIES = [
    {"ID": "se1", "Type": "Series", "ParentStudy": "st1", "MainDicomTags": {}},
    {"ID": "se2", "Type": "Series", "ParentStudy": "st1", "MainDicomTags": {}},
]
INSTANCES = [{"ID": "i1", "Type": "Instance", "ParentSeries": "se1"}]


def core_with_study() -> FakeCore:
    def find(body: bytes | None) -> list[dict[str, Any]]:
        query = json.loads(body or b"{}")["Query"]
        return SERIES[:1] if "SeriesInstanceUID" in query else SERIES

    return FakeCore(
        {
            ("POST", "/tools/find"): find,
            ("GET", "/studies/st1/series"): SERIES,
            ("GET", "/series/se1/instances"): INSTANCES,
        }
    )


def test_series_below_a_study_reuse_what_the_etag_found() -> None:
    core = core_with_study()
    study = ResourcePath("1.1")
    with request_scope():
        found_resources(core, study, level="Series")  # as the ETag does
        children = list(IndexEntries(core, IndexCache(core)).children_of(study, "Series"))
    assert children == SERIES
    assert core.uris("POST") == ["/tools/find"]
    assert core.uris() == ["/studies/st1/series"]


def test_instances_below_a_series_reuse_what_the_etag_found() -> None:
    core = core_with_study()
    series = ResourcePath("1.1", "1.1.1")
    with request_scope():
        found_resources(core, series, level="Series")
        children = list(IndexEntries(core, IndexCache(core)).children_of(series, "Instance"))
    assert children == INSTANCES
    assert core.uris("POST") == ["/tools/find"]


def test_without_a_request_scope_the_series_are_found_once() -> None:
    core = core_with_study()
    children = list(IndexEntries(core, IndexCache(core)).children_of(ResourcePath("1.1"), "Series"))
    assert children == SERIES
    assert core.uris("POST") == ["/tools/find"]
