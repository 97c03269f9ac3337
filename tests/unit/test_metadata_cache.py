"""The series metadata cache, against the fake core holding one series of real files."""

from __future__ import annotations

import gzip
import json
import logging
import time
from typing import Any

import pytest

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.orthanc.core import CoreError
from orthanc_dicomweb.orthanc.series_members import CHANGES_PAGE, MemberMemo
from orthanc_dicomweb.orthanc.storage_ids import (
    INSTANCE_METADATA,
    OFFICIAL_SERIES_METADATA,
    PREPARED_ANSWER,
    SERIES_METADATA,
)
from orthanc_dicomweb.services.metadata.cache import (
    PreparedAnswers,
    SeriesMetadataCache,
    absolute_bulk_data_uris,
    answer_key,
    change_listener,
    is_legacy_entry,
    join_json_arrays,
    pack_answer,
    pack_entry,
    pack_instance,
    relative_bulk_data_uri,
    series_key,
    unpack_answer,
    unpack_entry,
    unpack_instance,
)
from tests.fake_core import FakeCore, orthanc_id
from tests.harness import PYDICOM_FILES
from tests.helpers import derived

STUDY, SERIES = "1.2.3", "1.2.3.4"
SOURCE = (PYDICOM_FILES / "SC_rgb_small_odd.dcm").read_bytes()  # with pixel data, 1.4 kB


def instance_file(number: int, **attributes: Any) -> bytes:
    """Instance `number` of the series: SOP Instance UID 1.2.3.4.{number}."""
    sop = f"{SERIES}.{number}"
    return derived(SOURCE, STUDY, SERIES, SOPInstanceUID=sop, InstanceNumber=number, **attributes)


def series_core(count: int) -> FakeCore:
    """A core holding the series' instances 1 to `count`."""
    return FakeCore(files=[instance_file(number) for number in range(1, count + 1)])


def series_id(core: FakeCore) -> str:
    return core.id_of(SERIES)


def study_id(core: FakeCore) -> str:
    return core.id_of(STUDY)


def instance_id(core: FakeCore, number: int) -> str:
    return core.id_of(f"{SERIES}.{number}")


def member_ids(core: FakeCore) -> list[str]:
    """The series' instances, as the core lists them."""
    return [resource.id for resource in core.of_level("Instance")]


def entry(core: FakeCore) -> str:
    """Where the series' cache entry is kept."""
    return f"/series/{series_id(core)}/attachments/{SERIES_METADATA}"


def kept(instance: str) -> str:
    return f"/instances/{instance}/attachments/{INSTANCE_METADATA}"


def store_again(core: FakeCore, number: int) -> None:
    """As the core does for an overwritten instance: same id, new file uuid, a change."""
    core.config["OverwriteInstances"] = True
    core.store(instance_file(number))


def test_relative_uri_becomes_absolute_with_the_request_base() -> None:
    uri = relative_bulk_data_uri(STUDY, SERIES, "9", (0x00540016, 0, 0x00181072))
    assert uri == f"studies/{STUDY}/series/{SERIES}/instances/9/bulk/00540016/1/00181072"
    body = json.dumps([{"7FE00010": {"vr": "OW", "BulkDataURI": uri}}], separators=(",", ":"))
    answer = absolute_bulk_data_uris(body.encode(), "http://host:8042/dicom-web/")
    assert json.loads(answer)[0]["7FE00010"]["BulkDataURI"] == "http://host:8042/dicom-web/" + uri


def test_hostile_base_cannot_break_the_json() -> None:
    body = b'[{"7FE00010":{"vr":"OW","BulkDataURI":"studies/1"}}]'
    base = 'http://evil"},{"x\\/'
    parsed = json.loads(absolute_bulk_data_uris(body, base))
    assert parsed[0]["7FE00010"]["BulkDataURI"] == base + "studies/1"


def test_text_that_looks_like_a_bulk_data_key_is_not_touched() -> None:
    value = {"00081030": {"vr": "LO", "Value": ['"BulkDataURI":"studies/']}}
    body = json.dumps([value], separators=(",", ":")).encode()
    assert json.loads(absolute_bulk_data_uris(body, "http://h/")) == [value]


def test_json_arrays_join_without_parsing() -> None:
    assert join_json_arrays([b"[1,2]", b"[]", b"[3]"]) == b"[1,2,3]"
    assert join_json_arrays([]) == b"[]"


def test_entry_is_read_back_only_with_its_key() -> None:
    packed = pack_entry("k1", "BulkDataURI", [("i1", b"{}"), ("i2", b'{"a":1}')])
    assert unpack_entry(packed, "k1") == b'[{},{"a":1}]'
    assert unpack_entry(packed, "k2") is None
    assert unpack_entry(pack_entry("k1", "BulkDataURI", []), "k1") == b"[]"
    assert unpack_entry(b"not gzip", "k1") is None
    assert unpack_entry(gzip.compress(b"not json\n[1]"), "k1") is None


def test_large_entry_is_read_back_whole_and_in_order() -> None:
    datasets = [(f"i{n}", json.dumps({"n": n, "pad": "x" * n}).encode()) for n in range(500)]
    packed = pack_entry("k1", "BulkDataURI", datasets)
    assert unpack_entry(packed, "k1") == b"[" + b",".join(d for _, d in datasets) + b"]"
    assert unpack_entry(packed[:-7], "k1") is None  # a truncated last member


def test_an_instance_dataset_is_read_back_only_for_the_same_format_and_mode() -> None:
    packed = pack_instance("BulkDataURI", b'{"a":1}')
    assert unpack_instance(packed, "BulkDataURI") == b'{"a":1}'
    assert unpack_instance(packed, "InlineBinary") is None
    assert unpack_instance(packed[:-5], "BulkDataURI") is None  # truncated
    older = b'{"Version": 1, "Mode": "BulkDataURI"}\n' + gzip.compress(b'{"a":1}')
    assert unpack_instance(older, "BulkDataURI") is None
    assert unpack_instance(b"not json\n", "BulkDataURI") is None
    assert unpack_instance(b"[]", "BulkDataURI") is None


def test_first_call_computes_and_stores_later_calls_read_the_cache() -> None:
    core = series_core(2)
    cache = SeriesMetadataCache(Configuration(), core)
    first = cache.series_json(series_id(core))
    assert core.tags_reads() == 2
    assert entry(core) in core.attachments()
    second = cache.series_json(series_id(core))
    assert core.tags_reads() == 2  # served from the attachment
    assert first == second
    datasets = json.loads(first)
    assert [d["00080018"]["Value"][0] for d in datasets] == ["1.2.3.4.1", "1.2.3.4.2"]
    assert datasets[0]["7FE00010"]["BulkDataURI"].startswith(f"studies/{STUDY}/series/")


def test_a_new_instance_makes_the_entry_stale() -> None:
    core = series_core(1)
    cache = SeriesMetadataCache(Configuration(), core)
    cache.series_json(series_id(core))
    core.store(instance_file(2))  # as if another Orthanc stored it, unseen by this process
    assert len(json.loads(cache.series_json(series_id(core)))) == 2
    assert core.tags_reads() == 3


def test_an_instance_stored_again_makes_the_entry_stale() -> None:
    core = series_core(2)
    cache = SeriesMetadataCache(Configuration(), core)
    cache.series_json(series_id(core))
    store_again(core, 2)  # OverwriteInstances: same instance id, a new file
    cache.series_json(series_id(core))
    assert core.tags_reads() == 4
    cache.series_json(series_id(core))
    assert core.tags_reads() == 4  # the rebuilt entry is valid


def test_members_are_listed_again_only_after_a_store() -> None:
    core = series_core(300)
    cache = SeriesMetadataCache(Configuration(), core)
    series, ids = series_id(core), member_ids(core)
    first = cache.series_members(series, ids)
    cache.series_json(series, first)  # writes the entry: an UpdatedAttachment change
    core.calls.clear()
    assert cache.series_members(series, ids) == first
    assert f"/series/{series}/instances" not in core.uris()  # only harmless changes since
    store_again(core, 7)
    again = cache.series_members(series, ids)
    seventh = instance_id(core, 7)
    assert dict(again)[seventh] == core.resources[seventh].file_uuid != dict(first)[seventh]
    ninth = instance_id(core, 9)
    core.remove(ninth)  # deletions are not logged (as in the core): the ids show them
    assert ninth not in dict(cache.series_members(series, member_ids(core)))


def test_a_warm_hit_costs_one_attachment_read_and_change_log_calls() -> None:
    core = series_core(300)
    cache = SeriesMetadataCache(Configuration(), core)
    series = series_id(core)
    cache.series_json(series, cache.series_members(series, member_ids(core)))
    core.calls.clear()
    cache.series_json(series, cache.series_members(series, member_ids(core)))
    assert f"{entry(core)}/data" in core.uris()
    assert not [uri for uri in core.uris() if uri.endswith(("/instances", "/tags"))]


def test_the_official_plugins_attachment_number_is_not_ours() -> None:
    ours = {SERIES_METADATA, PREPARED_ANSWER, INSTANCE_METADATA}
    assert OFFICIAL_SERIES_METADATA not in ours
    assert all(number >= 1024 for number in ours)  # Orthanc's user-defined range


def test_cached_and_fresh_answers_are_identical() -> None:
    core = series_core(3)
    cached = SeriesMetadataCache(Configuration(), core)
    cached.series_json(series_id(core))
    fresh = SeriesMetadataCache(Configuration(enable_metadata_cache=False), core)
    assert cached.series_json(series_id(core)) == fresh.series_json(series_id(core))


def test_other_binary_mode_is_part_of_the_key() -> None:
    core = series_core(1)
    SeriesMetadataCache(Configuration(), core).series_json(series_id(core))
    inline = Configuration(other_binary_mode="InlineBinary")
    SeriesMetadataCache(inline, core).series_json(series_id(core))
    assert core.tags_reads() == 2


def test_disabled_cache_neither_reads_nor_writes() -> None:
    core = series_core(1)
    cache = SeriesMetadataCache(Configuration(enable_metadata_cache=False), core)
    cache.series_json(series_id(core))
    cache.series_json(series_id(core))
    assert core.attachments() == {}
    assert not any("attachments" in uri for _, uri, _ in core.calls)


def test_read_only_orthanc_computes_without_writing() -> None:
    core = series_core(1)
    SeriesMetadataCache(Configuration(read_only=True), core).series_json(series_id(core))
    assert core.attachments() == {}


def test_rebuild_study_rewrites_every_series() -> None:
    core = series_core(1)
    core.put(entry(core), pack_entry("stale", "BulkDataURI", []))
    cache = SeriesMetadataCache(Configuration(), core)
    assert cache.rebuild_study(study_id(core)) == [series_id(core)]
    assert len(json.loads(cache.series_json(series_id(core)))) == 1
    assert core.tags_reads() == 1  # the rebuilt entry is the one served


def test_rebuild_keeps_each_instance_dataset_with_the_instance() -> None:
    core = series_core(2)
    cache = SeriesMetadataCache(Configuration(), core)
    cache.rebuild(series_id(core))
    datasets = json.loads(cache.series_json(series_id(core)))
    instances = [instance_id(core, number) for number in (1, 2)]
    kept_datasets = [json.loads(cache.instance_json(i) or b"null") for i in instances]
    assert kept_datasets == datasets
    assert cache.instance_json(orthanc_id("P", STUDY, SERIES, "9.9")) is None


def test_instance_datasets_are_not_kept_when_read_only_or_disabled() -> None:
    for config in (Configuration(read_only=True), Configuration(enable_metadata_cache=False)):
        core = series_core(1)
        cache = SeriesMetadataCache(config, core)
        cache.keep_instance(instance_id(core, 1), b"{}")
        assert core.attachments() == {}
    core.put(kept(instance_id(core, 1)), pack_instance("BulkDataURI", b"{}"))
    assert cache.instance_json(instance_id(core, 1)) is None  # disabled: not read either


def test_stable_series_is_cached_in_the_background() -> None:
    core = series_core(1)
    listener = change_listener(Configuration(), core)
    listener("NEW_INSTANCE", "INSTANCE", instance_id(core, 1))
    listener("STABLE_SERIES", "SERIES", series_id(core))
    assert _cached_in_time(core)


def _cached_in_time(core: FakeCore) -> bool:
    """Whether the background worker wrote the series' cache within 5 s."""
    deadline = time.monotonic() + 5
    while entry(core) not in core.attachments() and time.monotonic() < deadline:
        time.sleep(0.01)
    return entry(core) in core.attachments()


def test_a_series_deleted_before_its_rebuild_is_no_error(caplog) -> None:
    """The core reports series stable after their deletion: an info line, and the worker goes
    on with the next series."""
    core = series_core(1)
    listener = change_listener(Configuration(), core)
    with caplog.at_level(logging.INFO, logger="orthanc_dicomweb"):
        listener("STABLE_SERIES", "SERIES", "gone")
        listener("STABLE_SERIES", "SERIES", series_id(core))
        assert _cached_in_time(core)
    assert [r.levelname for r in caplog.records if "gone" in r.getMessage()] == ["INFO"]


@pytest.mark.parametrize(
    "config",
    [Configuration(enable_metadata_cache=False), Configuration(read_only=True)],
    ids=["cache disabled", "read-only"],
)
def test_listener_does_nothing_when_the_cache_cannot_be_used(config: Configuration) -> None:
    core = series_core(1)
    change_listener(config, core)("STABLE_SERIES", "SERIES", series_id(core))
    time.sleep(0.1)
    assert core.calls == []


def test_unknown_series_is_a_404() -> None:
    with pytest.raises(CoreError) as raised:
        SeriesMetadataCache(Configuration(), FakeCore()).series_json("nope")
    assert raised.value.status == 404


# --- Prepared answers ---------------------------------------------------------------------------


def test_answer_key_follows_the_series_their_instances_their_files_and_their_order() -> None:
    config = Configuration()
    i1, i2, i3 = ("i1", "f1"), ("i2", "f2"), ("i3", "f3")
    one = answer_key(config, [("s1", [i1, i2]), ("s2", [i3])])
    assert one == answer_key(config, [("s1", [i2, i1]), ("s2", [i3])])
    assert one != answer_key(config, [("s2", [i3]), ("s1", [i1, i2])])
    assert one != answer_key(config, [("s1", [i1]), ("s2", [i3])])
    assert one != answer_key(config, [("s1", [i1, ("i2", "f2 stored again")]), ("s2", [i3])])
    assert one != answer_key(
        Configuration(other_binary_mode="InlineBinary"), [("s1", [i1, i2]), ("s2", [i3])]
    )
    assert series_key(config, [i1]) != series_key(config, [i1, i2])


@pytest.mark.parametrize("base", ["http://h:8042/dicom-web/", 'http://evil"\n\\/', "http://ü/"])
def test_prepared_answer_is_read_back_only_for_its_key_and_base(base: str) -> None:
    body = b'[{"a":1}]'
    packed = pack_answer("k1", base, body)
    assert gzip.decompress(unpack_answer(packed, "k1", base) or b"") == body
    assert unpack_answer(packed, "k2", base) is None
    assert unpack_answer(packed, "k1", base + "x") is None


@pytest.mark.parametrize("data", [b"", b"garbage", b"[1]\n", b'{"Key": "k1"}', b"\n\x1f\x8b"])
def test_foreign_prepared_answer_is_ignored(data: bytes) -> None:
    assert unpack_answer(data, "k1", "http://h/") is None


def test_prepared_answers_are_written_and_read_on_the_resource() -> None:
    core = series_core(1)
    answers = PreparedAnswers(Configuration(), core)
    series = f"/series/{series_id(core)}"
    assert answers.read(series, "k1", "http://h/") is None
    assert answers.write(series, "k1", "http://h/", b"[1]") is True
    assert f"{series}/attachments/{PREPARED_ANSWER}" in core.attachments()
    assert answers.read(series, "k1", "http://h/") == b"[1]"
    assert answers.read(series, "k1", "http://other/") is None


@pytest.mark.parametrize(
    "config",
    [Configuration(enable_metadata_cache=False), Configuration(read_only=True)],
    ids=["cache disabled", "read-only"],
)
def test_prepared_answers_are_not_written_when_the_cache_cannot_be(config: Configuration) -> None:
    core = series_core(1)
    series = f"/series/{series_id(core)}"
    assert PreparedAnswers(config, core).write(series, "k1", "http://h/", b"[1]") is False
    assert core.attachments() == {}


def test_refused_prepared_answer_is_not_served() -> None:
    class RefusingCore(FakeCore):
        def put(self, uri: str, body: bytes) -> bytes:
            raise CoreError(22, "ReadOnly", uri)

    core = RefusingCore(files=[instance_file(1)])
    answers = PreparedAnswers(Configuration(), core)
    assert answers.write(f"/series/{series_id(core)}", "k1", "http://h/", b"[1]") is False


def test_prepared_answer_of_a_series_with_an_instance_stored_again_is_not_served() -> None:
    core = series_core(1)
    cache = SeriesMetadataCache(Configuration(), core)
    answers = PreparedAnswers(Configuration(), core)
    series, ids = series_id(core), member_ids(core)
    key = answer_key(Configuration(), [(series, cache.series_members(series, ids))])
    answers.write(f"/series/{series}", key, "http://h/", b"[1]")
    store_again(core, 1)
    fresh_key = answer_key(Configuration(), [(series, cache.series_members(series, ids))])
    assert answers.read(f"/series/{series}", fresh_key, "http://h/") is None


def test_members_are_listed_again_after_more_changes_than_a_page() -> None:
    core = series_core(1)
    memo = MemberMemo(core)
    series, ids = series_id(core), member_ids(core)
    memo.members(series, ids)
    for _ in range(CHANGES_PAGE + 1):  # harmless, but not all read
        core.log("UpdatedMetadata", ids[0])
    core.calls.clear()
    memo.members(series, ids)
    assert f"/series/{series}/instances" in core.uris()


def test_member_memo_keeps_a_bounded_number_of_series() -> None:
    core = series_core(1)
    core.answers[("GET", "/series/s2/instances")] = []  # an empty second series
    memo = MemberMemo(core, capacity=1)
    series, ids = series_id(core), member_ids(core)
    listing = f"/series/{series}/instances"
    memo.members(series, ids)
    memo.members(series, ids)
    assert core.uris().count(listing) == 1
    memo.members("s2", [])  # pushes the first series out
    memo.members(series, ids)
    assert core.uris().count(listing) == 2


@pytest.mark.parametrize(
    ("data", "ours"),
    [
        (pack_entry("k", "BulkDataURI", [("i1", b"{}")]), True),  # as 4301 held it before
        (b"2;" + b"0" * 32 + b";" + gzip.compress(b'[{"00080018":{}}]'), False),
        (gzip.compress(b'[{"00080018":{}}]'), False),
        (gzip.compress(b'{"Key": "k"}\n[]'), False),
        (b"garbage", False),
    ],
)
def test_legacy_entries_are_told_from_the_official_plugins_cache(data: bytes, ours: bool) -> None:
    assert is_legacy_entry(data) is ours


def test_rebuild_removes_only_our_old_entry_from_the_official_plugins_number() -> None:
    core = series_core(1)
    cache = SeriesMetadataCache(Configuration(), core)
    official = f"/series/{series_id(core)}/attachments/{OFFICIAL_SERIES_METADATA}"
    theirs = gzip.compress(b'[{"00080018":{}}]')
    core.put(official, theirs)
    cache.rebuild(series_id(core))
    assert core.attachments()[official] == theirs
    core.put(official, pack_entry("k", "BulkDataURI", []))
    cache.rebuild(series_id(core))
    assert official not in core.attachments()
