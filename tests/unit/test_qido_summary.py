"""Instance summaries: their attachment format and its checks."""

from __future__ import annotations

import zlib

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.orthanc.storage_ids import INSTANCE_SUMMARIES
from orthanc_dicomweb.services.qido.summary import (
    Entry,
    InstanceSummaries,
    pack_summary,
    unpack_summary,
)
from tests.unit.fakes import FakeCore

TAGS = frozenset({0x00080016, 0x00280010})
ROWS = {"vr": "US", "Value": [512]}


def test_a_summary_comes_back_as_written() -> None:
    summary = {"i1": Entry("file-1", {"00280010": ROWS})}
    assert unpack_summary(pack_summary(TAGS, summary), TAGS) == summary


def test_a_summary_of_other_tags_is_ignored() -> None:
    data = pack_summary(TAGS, {"i1": Entry("file-1", {"00280010": ROWS})})
    assert unpack_summary(data, TAGS | {0x00280011}) == {}


def test_corrupt_or_foreign_attachments_are_ignored() -> None:
    assert unpack_summary(b"not zlib", TAGS) == {}
    assert unpack_summary(zlib.compress(b"[1, 2]"), TAGS) == {}
    assert unpack_summary(zlib.compress(b'{"Version": 99}'), TAGS) == {}


def test_entries_keep_only_the_summarised_attributes() -> None:
    summaries = InstanceSummaries(Configuration(), FakeCore(), TAGS)
    entry = summaries.entry("file-1", {"00280010": ROWS, "00100010": {"vr": "PN"}})
    assert entry == Entry("file-1", {"00280010": ROWS})


def test_a_missing_summary_is_empty_and_a_failed_write_is_not_an_error() -> None:
    core = FakeCore()
    summaries = InstanceSummaries(Configuration(), core, TAGS)
    assert summaries.read("se1") == {}
    summaries.write("se1", {"i1": Entry("file-1", {})})  # the fake refuses: series deleted
    assert core.calls[-1][:2] == ("PUT", f"/series/se1/attachments/{INSTANCE_SUMMARIES}")
