"""IndexEntries lists a whole level in pages once it holds more than a page (the core builds
each listing whole before answering), and in one call below that."""

from __future__ import annotations

from typing import Any

import pytest

from orthanc_dicomweb.orthanc.index_cache import IndexCache
from orthanc_dicomweb.services.qido import index as qido_index
from orthanc_dicomweb.services.qido.index import IndexEntries
from tests.unit.fakes import FakeCore

SERIES = [{"ID": f"se{number}", "Type": "Series", "ParentStudy": "st1"} for number in (1, 2, 3)]
URIS = [f"/series/{series['ID']}" for series in SERIES]


def entries_over(answers: dict[tuple[str, str], Any]) -> tuple[IndexEntries, FakeCore]:
    core = FakeCore({("GET", "/statistics"): {"CountSeries": len(SERIES)}, **answers})
    return IndexEntries(core, IndexCache(core)), core


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qido_index, "BULK_MINIMUM", 1)
    monkeypatch.setattr(qido_index, "LISTING_PAGE", 2)


def test_a_level_larger_than_a_page_is_listed_page_by_page() -> None:
    entries, core = entries_over(
        {
            ("GET", "/series?expand&since=0&limit=2"): SERIES[:2],
            ("GET", "/series?expand&since=2&limit=2"): SERIES[2:],
        }
    )
    entries.read_missing("Series", URIS)
    assert core.uris()[1:] == ["/series?expand&since=0&limit=2", "/series?expand&since=2&limit=2"]
    assert [entries.cached(uri) for uri in URIS] == SERIES


def test_a_level_within_a_page_is_listed_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qido_index, "LISTING_PAGE", 3)
    entries, core = entries_over({("GET", "/series?expand"): SERIES})
    entries.read_missing("Series", URIS)
    assert core.uris()[1:] == ["/series?expand"]


def test_a_resource_the_pages_skip_is_read_alone() -> None:
    # se1 deleted between the pages: the second page starts one resource later.
    entries, _ = entries_over(
        {
            ("GET", "/series?expand&since=0&limit=2"): SERIES[:2],
            ("GET", "/series?expand&since=2&limit=2"): [],
            ("GET", "/series/se3"): SERIES[2],
        }
    )
    entries.read_missing("Series", URIS)
    assert entries.cached(URIS[2]) is None
    assert entries.resource(URIS[2]) == SERIES[2]
