"""The index cache's validity rules, without Orthanc: the change log and the deletion token."""

from __future__ import annotations

import time

import pytest

from orthanc_dicomweb.config import parse_configuration
from orthanc_dicomweb.orthanc.index_cache import (
    DELETION_TOKEN_PROPERTY,
    RESOLVED_AT_MOST,
    IndexCache,
)
from orthanc_dicomweb.orthanc.request_scope import request_scope
from orthanc_dicomweb.plugin import build
from tests.fake_core import FakeCore, PropertiesCore


@pytest.fixture
def core() -> PropertiesCore:
    return PropertiesCore()


def filled(core: PropertiesCore, capacity: int = 100) -> IndexCache:
    cache = IndexCache(core, capacity)
    assert cache.validate() is False  # nothing kept yet
    cache.put("/studies/a", {"ID": "a"})
    return cache


def test_entries_stay_while_nothing_changes(core: PropertiesCore) -> None:
    cache = filled(core)
    assert cache.validate() is True
    assert cache.get("/studies/a") == {"ID": "a"}


@pytest.mark.parametrize("change", ["UpdatedAttachment", "StableStudy", "UpdatedMetadata"])
def test_harmless_changes_keep_the_entries(core: PropertiesCore, change: str) -> None:
    cache = filled(core)
    core.log(change)
    assert cache.validate() is True


@pytest.mark.parametrize("change", ["ModifiedStudy", "Unknown"])
def test_other_changes_drop_every_entry(core: PropertiesCore, change: str) -> None:
    cache = filled(core)
    core.log("StableStudy")
    core.log(change)
    assert cache.validate() is False
    assert cache.get("/studies/a") is None


def new_instance(core: PropertiesCore, instance: str, series: str, study: str) -> None:
    core.log("NewInstance", instance)
    core.log("NewSeries")
    core.answers[("GET", f"/instances/{instance}/series")] = {"ID": series, "ParentStudy": study}


def test_a_new_instance_drops_its_series_and_study_only(core: PropertiesCore) -> None:
    cache = filled(core)
    cache.put("/studies/a", "answer", ("answer", "http://x/"))
    cache.put("/series/s", {"ID": "s"})
    cache.put("/studies/b", {"ID": "b"})
    new_instance(core, "i", "s", "a")
    assert cache.validate() is True
    assert cache.get("/studies/a") is None
    assert cache.get("/studies/a", ("answer", "http://x/")) is None
    assert cache.get("/series/s") is None
    assert cache.get("/studies/b") == {"ID": "b"}


def test_a_new_instance_deleted_already_drops_every_entry(core: PropertiesCore) -> None:
    cache = filled(core)
    core.log("NewInstance", "gone")
    assert cache.validate() is False


def test_many_new_instances_drop_every_entry(core: PropertiesCore) -> None:
    cache = filled(core)
    cache.put("/studies/b", {"ID": "b"})
    for number in range(RESOLVED_AT_MOST + 1):
        new_instance(core, f"i{number}", "s", "a")
    assert cache.validate() is False


def test_aspects_live_and_go_with_their_resource(core: PropertiesCore) -> None:
    cache = filled(core, capacity=1)
    cache.put("/studies/a", "json", "DICOM JSON")
    assert cache.get("/studies/a", "DICOM JSON") == "json"
    assert cache.get("/studies/a", "other") is None
    cache.put("/studies/b", {"ID": "b"})  # beyond the capacity: /studies/a goes, whole
    assert cache.get("/studies/a", "DICOM JSON") is None


def test_more_changes_than_a_page_drop_every_entry(core: PropertiesCore) -> None:
    cache = filled(core)
    for _ in range(150):
        core.log("UpdatedAttachment")
    assert cache.validate() is False


def test_after_more_than_a_page_the_log_is_read_on_from_its_end(
    core: PropertiesCore,
) -> None:
    cache = filled(core)
    for _ in range(1000):
        core.log("NewInstance")
    assert cache.validate() is False
    cache.put("/studies/a", {"ID": "a"})
    assert cache.validate() is True  # the changes already paid for drop nothing more


def test_a_cleared_change_log_drops_every_entry(core: PropertiesCore) -> None:
    core.log("NewInstance")
    cache = filled(core)
    core.changes.clear()  # DELETE /changes
    assert cache.validate() is False


def test_a_new_deletion_token_drops_every_entry(core: PropertiesCore) -> None:
    cache = filled(core)
    core.properties[DELETION_TOKEN_PROPERTY] = "written by another Orthanc"
    assert cache.validate() is False


def test_a_deletion_here_drops_the_entries_and_writes_a_new_token(
    core: PropertiesCore,
) -> None:
    cache = filled(core)
    cache.change_listener("DELETED", "INSTANCE", "x")
    assert cache.get("/studies/a") is None
    deadline = time.monotonic() + 5
    while DELETION_TOKEN_PROPERTY not in core.properties and time.monotonic() < deadline:
        time.sleep(0.01)
    assert core.properties[DELETION_TOKEN_PROPERTY]


def test_other_changes_reported_to_the_listener_keep_the_entries(
    core: PropertiesCore,
) -> None:
    cache = filled(core)
    cache.change_listener("NEW_INSTANCE", "INSTANCE", "x")
    assert cache.get("/studies/a") == {"ID": "a"}


def test_the_least_recently_used_entries_go_beyond_the_capacity(
    core: PropertiesCore,
) -> None:
    cache = filled(core, capacity=2)
    cache.put("/studies/b", {"ID": "b"})
    cache.get("/studies/a")
    cache.put("/studies/c", {"ID": "c"})
    assert cache.get("/studies/b") is None
    assert cache.get("/studies/a") is not None and cache.get("/studies/c") is not None


def test_capacity_zero_keeps_nothing_and_calls_nothing() -> None:
    core = FakeCore()
    cache = IndexCache(core, capacity=0)
    assert cache.validate() is False
    cache.put("/studies/a", {"ID": "a"})
    assert cache.get("/studies/a") is None
    assert core.calls == []


# --- the database's revision (ETags of searches) --------------------------------------------------


def test_revision_ignores_harmless_changes_and_follows_stores(core: PropertiesCore) -> None:
    core.log("NewSeries")
    cache = IndexCache(core)
    first = cache.revision()
    core.log("UpdatedAttachment")
    core.log("StableSeries")
    assert cache.revision() == first  # the metadata cache's writes change nothing
    core.log("NewSeries")
    core.log("UpdatedMetadata")
    assert cache.revision() not in (first, "")
    assert cache.revision().startswith("4.")  # the store's sequence number


def test_revision_changes_with_deletions_here_and_elsewhere(core: PropertiesCore) -> None:
    cache = IndexCache(core)
    before = cache.revision()
    cache.change_listener("DELETED", "INSTANCE", "x")  # told by this Orthanc, not logged
    here = cache.revision()
    assert here != before
    core.properties[DELETION_TOKEN_PROPERTY] = "another node deleted"
    assert cache.revision() not in (before, here)


def test_revision_never_goes_back(core: PropertiesCore) -> None:
    cache = IndexCache(core)
    core.log("NewSeries")
    cache.revision()
    core.changes.clear()  # a log that seems to start again must not bring an old tag back
    assert cache.revision().startswith("1.")


def test_revision_without_copies_kept() -> None:
    core = PropertiesCore()
    core.log("NewSeries")
    cache = IndexCache(core, capacity=0)
    assert cache.revision().startswith("1.")
    core.log("NewSeries")
    assert cache.revision().startswith("2.")


def test_one_request_reads_the_log_once(core: PropertiesCore) -> None:
    cache = filled(core)
    core.calls.clear()
    with request_scope():
        revision = cache.revision()
        assert cache.validate() is True
        core.log("NewStudy")  # seen by the next request only
        assert cache.revision() == revision
    assert len(core.calls) == 1  # /changes?since=... (the token is a property)
    assert cache.revision() != revision


@pytest.mark.parametrize("size", [0, 3, 120_000])
def test_the_plugin_keeps_as_many_resources_as_configured(size: int) -> None:
    config = parse_configuration({"DicomWeb": {"QidoIndexCacheSize": size}})
    plugin = build(config, PropertiesCore())
    owners = [getattr(listener, "__self__", None) for listener in plugin.change_listeners]
    assert [cache.capacity for cache in owners if isinstance(cache, IndexCache)] == [size]
