"""The series metadata cache, against a fake core that keeps attachments in a dict."""

from __future__ import annotations

import gzip
import json
import logging
import time
from typing import Any

import pytest

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.orthanc.storage_ids import (
    INSTANCE_METADATA,
    OFFICIAL_SERIES_METADATA,
    PREPARED_ANSWER,
    SERIES_METADATA,
)
from orthanc_dicomweb.orthanc.core import CoreError
from orthanc_dicomweb.orthanc.series_members import CHANGES_PAGE, MemberMemo
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

STUDY, SERIES = "1.2.3", "1.2.3.4"
ATTACHMENT = f"/series/s1/attachments/{SERIES_METADATA}"


def kept(instance_id: str) -> str:
    return f"/instances/{instance_id}/attachments/{INSTANCE_METADATA}"


def instance_tags(sop: str) -> dict[str, Any]:
    def text(name: str, value: str) -> dict[str, Any]:
        return {"Name": name, "Type": "String", "Value": value}

    return {
        "0008,0018": text("SOPInstanceUID", sop),
        "0010,0010": text("PatientName", "Doe^John"),
        "0020,000d": text("StudyInstanceUID", STUDY),
        "0020,000e": text("SeriesInstanceUID", SERIES),
        "0028,0010": text("Rows", "2"),
        "7fe0,0010": {"Name": "PixelData", "Type": "Null", "Value": None},
    }


class FakeCore:
    """The core's REST API for one series `s1` of study `t1`, its instances and attachments."""

    def __init__(self, instances: list[str]) -> None:
        self.instances = list(instances)
        self.stored: dict[str, int] = {}  # times an instance was stored again
        self.attachments: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.changes: list[str] = []  # the change log: change types, Seq = position + 1

    def store_again(self, instance_id: str) -> None:
        """As the core does for an overwritten instance: same id, new file uuid, a change."""
        self.stored[instance_id] = self.stored.get(instance_id, 0) + 1
        self.changes.append("NewInstance")

    def changes_since(self, since: int, limit: int) -> dict[str, Any]:
        logged = [
            {"Seq": seq, "ChangeType": change}
            for seq, change in enumerate(self.changes, start=1)
            if seq > since
        ]
        return {"Changes": logged[:limit], "Done": len(logged) <= limit, "Last": len(self.changes)}

    def described(self) -> list[dict[str, Any]]:
        return [
            {"ID": i, "ParentSeries": "s1", "FileUuid": f"{i}-file-{self.stored.get(i, 0)}"}
            for i in self.instances
        ]

    def get(self, uri: str) -> bytes:
        self.calls.append(uri)
        if uri == "/series/s1":
            return json.dumps({"Instances": self.instances, "ParentStudy": "t1"}).encode()
        if uri == "/series/s1/instances":
            return json.dumps(self.described()).encode()
        if uri == "/changes?last":
            return json.dumps({"Last": len(self.changes)}).encode()
        if uri.startswith("/changes?since="):
            since, limit = (int(part.split("=")[1]) for part in uri.split("?")[1].split("&"))
            return json.dumps(self.changes_since(since, limit)).encode()
        if uri == "/studies/t1":
            return json.dumps({"Series": ["s1"]}).encode()
        if uri.endswith("/tags"):
            orthanc_id = uri.split("/")[2]
            return json.dumps(instance_tags(f"1.2.3.4.{orthanc_id[1:]}")).encode()
        if uri.endswith("/data") and uri[: -len("/data")] in self.attachments:
            return self.attachments[uri[: -len("/data")]]
        raise CoreError(17, "Unknown resource", uri)

    def post(self, uri: str, body: bytes, after_plugins: bool = False) -> bytes:
        raise AssertionError(f"unexpected POST {uri}")

    def put(self, uri: str, body: bytes) -> bytes:
        self.calls.append("PUT " + uri)
        self.attachments[uri] = body
        self.changes.append("UpdatedAttachment")
        return b"{}"

    def delete(self, uri: str) -> None:
        self.attachments.pop(uri, None)

    def configuration(self) -> dict[str, Any]:
        return {}

    def tags_calls(self) -> int:
        return sum(call.endswith("/tags") for call in self.calls)


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
    core = FakeCore(["i1", "i2"])
    cache = SeriesMetadataCache(Configuration(), core)
    first = cache.series_json("s1")
    assert core.tags_calls() == 2
    assert ATTACHMENT in core.attachments
    second = cache.series_json("s1")
    assert core.tags_calls() == 2  # served from the attachment
    assert first == second
    datasets = json.loads(first)
    assert [d["00080018"]["Value"][0] for d in datasets] == ["1.2.3.4.1", "1.2.3.4.2"]
    assert datasets[0]["7FE00010"]["BulkDataURI"].startswith(f"studies/{STUDY}/series/")


def test_a_new_instance_makes_the_entry_stale() -> None:
    core = FakeCore(["i1"])
    cache = SeriesMetadataCache(Configuration(), core)
    cache.series_json("s1")
    core.instances.append("i2")  # as if another Orthanc stored it, unseen by this process
    assert len(json.loads(cache.series_json("s1"))) == 2
    assert core.tags_calls() == 3


def test_an_instance_stored_again_makes_the_entry_stale() -> None:
    core = FakeCore(["i1", "i2"])
    cache = SeriesMetadataCache(Configuration(), core)
    cache.series_json("s1")
    core.store_again("i2")  # OverwriteInstances: same instance id, a new file
    cache.series_json("s1")
    assert core.tags_calls() == 4
    cache.series_json("s1")
    assert core.tags_calls() == 4  # the rebuilt entry is valid


def test_members_are_listed_again_only_after_a_store() -> None:
    core = FakeCore([f"i{n}" for n in range(300)])
    cache = SeriesMetadataCache(Configuration(), core)
    ids = list(core.instances)
    first = cache.series_members("s1", ids)
    cache.series_json("s1", first)  # writes the entry: an UpdatedAttachment change
    core.calls.clear()
    assert cache.series_members("s1", ids) == first
    assert "/series/s1/instances" not in core.calls  # only harmless changes since
    core.store_again("i7")
    again = cache.series_members("s1", ids)
    assert dict(again)["i7"] == "i7-file-1"
    core.instances.remove("i9")  # deletions are not logged: the ids show them
    assert "i9" not in dict(cache.series_members("s1", core.instances))


def test_a_warm_hit_costs_one_attachment_read_and_change_log_calls() -> None:
    core = FakeCore([f"i{n}" for n in range(300)])
    cache = SeriesMetadataCache(Configuration(), core)
    cache.series_json("s1", cache.series_members("s1", core.instances))
    core.calls.clear()
    cache.series_json("s1", cache.series_members("s1", core.instances))
    assert f"{ATTACHMENT}/data" in core.calls
    assert not [call for call in core.calls if call.endswith(("/instances", "/tags"))]


def test_the_official_plugins_attachment_number_is_not_ours() -> None:
    ours = {SERIES_METADATA, PREPARED_ANSWER, INSTANCE_METADATA}
    assert OFFICIAL_SERIES_METADATA not in ours
    assert all(number >= 1024 for number in ours)  # Orthanc's user-defined range


def test_cached_and_fresh_answers_are_identical() -> None:
    core = FakeCore(["i1", "i2", "i3"])
    cached = SeriesMetadataCache(Configuration(), core)
    cached.series_json("s1")
    fresh = SeriesMetadataCache(Configuration(enable_metadata_cache=False), core)
    assert cached.series_json("s1") == fresh.series_json("s1")


def test_other_binary_mode_is_part_of_the_key() -> None:
    core = FakeCore(["i1"])
    SeriesMetadataCache(Configuration(), core).series_json("s1")
    SeriesMetadataCache(Configuration(other_binary_mode="InlineBinary"), core).series_json("s1")
    assert core.tags_calls() == 2


def test_disabled_cache_neither_reads_nor_writes() -> None:
    core = FakeCore(["i1"])
    cache = SeriesMetadataCache(Configuration(enable_metadata_cache=False), core)
    cache.series_json("s1")
    cache.series_json("s1")
    assert core.attachments == {}
    assert not any("attachments" in call for call in core.calls)


def test_read_only_orthanc_computes_without_writing() -> None:
    core = FakeCore(["i1"])
    SeriesMetadataCache(Configuration(read_only=True), core).series_json("s1")
    assert core.attachments == {}


def test_rebuild_study_rewrites_every_series() -> None:
    core = FakeCore(["i1"])
    core.attachments[ATTACHMENT] = pack_entry("stale", "BulkDataURI", [])
    cache = SeriesMetadataCache(Configuration(), core)
    assert cache.rebuild_study("t1") == ["s1"]
    assert len(json.loads(cache.series_json("s1"))) == 1
    assert core.tags_calls() == 1  # the rebuilt entry is the one served


def test_rebuild_keeps_each_instance_dataset_with_the_instance() -> None:
    core = FakeCore(["i1", "i2"])
    cache = SeriesMetadataCache(Configuration(), core)
    cache.rebuild("s1")
    datasets = json.loads(cache.series_json("s1"))
    kept_datasets = [json.loads(cache.instance_json(i) or b"null") for i in ("i1", "i2")]
    assert kept_datasets == datasets
    assert cache.instance_json("i3") is None


def test_instance_datasets_are_not_kept_when_read_only_or_disabled() -> None:
    for config in (Configuration(read_only=True), Configuration(enable_metadata_cache=False)):
        core = FakeCore(["i1"])
        cache = SeriesMetadataCache(config, core)
        cache.keep_instance("i1", b"{}")
        assert core.attachments == {}
    core.attachments[kept("i1")] = pack_instance("BulkDataURI", b"{}")
    assert cache.instance_json("i1") is None  # disabled: not read either


def test_stable_series_is_cached_in_the_background() -> None:
    core = FakeCore(["i1"])
    listener = change_listener(Configuration(), core)
    listener("NEW_INSTANCE", "INSTANCE", "i1")
    listener("STABLE_SERIES", "SERIES", "s1")
    assert _cached_in_time(core)


def _cached_in_time(core: FakeCore) -> bool:
    """Whether the background worker wrote the series' cache within 5 s."""
    deadline = time.monotonic() + 5
    while ATTACHMENT not in core.attachments and time.monotonic() < deadline:
        time.sleep(0.01)
    return ATTACHMENT in core.attachments


def test_a_series_deleted_before_its_rebuild_is_no_error(caplog) -> None:
    """The core reports series stable after their deletion: an info line, and the worker goes
    on with the next series."""
    core = FakeCore(["i1"])
    listener = change_listener(Configuration(), core)
    with caplog.at_level(logging.INFO, logger="orthanc_dicomweb"):
        listener("STABLE_SERIES", "SERIES", "gone")
        listener("STABLE_SERIES", "SERIES", "s1")
        assert _cached_in_time(core)
    assert [r.levelname for r in caplog.records if "gone" in r.getMessage()] == ["INFO"]


@pytest.mark.parametrize(
    "config",
    [Configuration(enable_metadata_cache=False), Configuration(read_only=True)],
    ids=["cache disabled", "read-only"],
)
def test_listener_does_nothing_when_the_cache_cannot_be_used(config: Configuration) -> None:
    core = FakeCore(["i1"])
    change_listener(config, core)("STABLE_SERIES", "SERIES", "s1")
    time.sleep(0.1)
    assert core.calls == []


def test_unknown_series_is_a_404() -> None:
    with pytest.raises(CoreError) as raised:
        SeriesMetadataCache(Configuration(), FakeCore([])).series_json("nope")
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
    core = FakeCore(["i1"])
    answers = PreparedAnswers(Configuration(), core)
    assert answers.read("/series/s1", "k1", "http://h/") is None
    assert answers.write("/series/s1", "k1", "http://h/", b"[1]") is True
    assert f"/series/s1/attachments/{PREPARED_ANSWER}" in core.attachments
    assert answers.read("/series/s1", "k1", "http://h/") == b"[1]"
    assert answers.read("/series/s1", "k1", "http://other/") is None


@pytest.mark.parametrize(
    "config",
    [Configuration(enable_metadata_cache=False), Configuration(read_only=True)],
    ids=["cache disabled", "read-only"],
)
def test_prepared_answers_are_not_written_when_the_cache_cannot_be(config: Configuration) -> None:
    core = FakeCore(["i1"])
    assert PreparedAnswers(config, core).write("/series/s1", "k1", "http://h/", b"[1]") is False
    assert core.attachments == {}


def test_refused_prepared_answer_is_not_served() -> None:
    class RefusingCore(FakeCore):
        def put(self, uri: str, body: bytes) -> bytes:
            raise CoreError(22, "ReadOnly", uri)

    answers = PreparedAnswers(Configuration(), RefusingCore(["i1"]))
    assert answers.write("/series/s1", "k1", "http://h/", b"[1]") is False


def test_prepared_answer_of_a_series_with_an_instance_stored_again_is_not_served() -> None:
    core = FakeCore(["i1"])
    cache = SeriesMetadataCache(Configuration(), core)
    answers = PreparedAnswers(Configuration(), core)
    key = answer_key(Configuration(), [("s1", cache.series_members("s1", ["i1"]))])
    answers.write("/series/s1", key, "http://h/", b"[1]")
    core.store_again("i1")
    fresh_key = answer_key(Configuration(), [("s1", cache.series_members("s1", ["i1"]))])
    assert answers.read("/series/s1", fresh_key, "http://h/") is None


def test_members_are_listed_again_after_more_changes_than_a_page() -> None:
    core = FakeCore(["i1"])
    memo = MemberMemo(core)
    memo.members("s1", ["i1"])
    core.changes += ["UpdatedMetadata"] * (CHANGES_PAGE + 1)  # harmless, but not all read
    core.calls.clear()
    memo.members("s1", ["i1"])
    assert "/series/s1/instances" in core.calls


def test_member_memo_keeps_a_bounded_number_of_series() -> None:
    class TwoSeriesCore(FakeCore):
        def get(self, uri: str) -> bytes:
            return b"[]" if uri == "/series/s2/instances" else super().get(uri)

    core = TwoSeriesCore(["i1"])
    memo = MemberMemo(core, capacity=1)
    memo.members("s1", ["i1"])
    memo.members("s1", ["i1"])
    assert core.calls.count("/series/s1/instances") == 1
    memo.members("s2", [])  # pushes s1 out
    memo.members("s1", ["i1"])
    assert core.calls.count("/series/s1/instances") == 2


OFFICIAL = f"/series/s1/attachments/{OFFICIAL_SERIES_METADATA}"


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
    core = FakeCore(["i1"])
    cache = SeriesMetadataCache(Configuration(), core)
    theirs = gzip.compress(b'[{"00080018":{}}]')
    core.attachments[OFFICIAL] = theirs
    cache.rebuild("s1")
    assert core.attachments[OFFICIAL] == theirs
    core.attachments[OFFICIAL] = pack_entry("k", "BulkDataURI", [])
    cache.rebuild("s1")
    assert OFFICIAL not in core.attachments
