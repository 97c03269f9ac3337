"""Parsed instance files kept between requests, by their storage uuid."""

from __future__ import annotations

from orthanc_dicomweb.orthanc.stored_instances import Instance, InstanceReader, ParsedFiles
from tests.unit.fakes import FakeCore, file_info
from tests.unit.test_rendering import DirectCore, _ct_file


def _instance(orthanc_id: str) -> Instance:
    return Instance(orthanc_id, {}, "1.2.840.10008.1.2.1")


def test_least_recently_used_files_go_first_beyond_the_capacity_in_bytes() -> None:
    files = ParsedFiles(capacity=100)
    files.put("a", _instance("a"), 40)
    files.put("b", _instance("b"), 40)
    assert files.get("a") is not None  # "b" is now the least recently used
    files.put("c", _instance("c"), 40)
    assert files.get("b") is None and files.get("a") and files.get("c") and len(files) == 2


def test_a_file_kept_again_is_counted_once_and_oversized_files_are_not_kept() -> None:
    files = ParsedFiles(capacity=100)
    for _ in range(3):
        files.put("a", _instance("a"), 60)
    files.put("b", _instance("b"), 40)
    assert files.get("a") and files.get("b")
    files.put("huge", _instance("huge"), 101)
    assert files.get("huge") is None and len(files) == 2
    nothing_kept = ParsedFiles(capacity=0)
    nothing_kept.put("a", _instance("a"), 0)
    assert nothing_kept.get("a") is None


def _core(uuid: str) -> FakeCore:
    return DirectCore(
        {
            ("GET", "/instances/abc/attachments/dicom/info"): file_info(900, uuid),
            ("GET", "/instances/abc/file"): _ct_file(),
        }
    )


def _uris(core: FakeCore) -> list[str]:
    return [uri for _, uri, _ in core.calls]


def test_a_parsed_file_is_read_once_while_its_storage_uuid_stays() -> None:
    files = ParsedFiles()
    core = _core("file-1")
    reader = InstanceReader(core, files=files)
    first, second = reader.load("abc"), reader.load("abc")
    assert second is first and first.dataset is not None
    assert _uris(core) == [
        "/instances/abc/attachments/dicom/info",
        "/instances/abc/file",
        "/instances/abc/attachments/dicom/info",
    ]
    # Stored again (OverwriteInstances): same Orthanc id, a new file, read again.
    core.answers[("GET", "/instances/abc/attachments/dicom/info")] = file_info(900, "file-2")
    assert reader.load("abc") is not first and _uris(core)[-1] == "/instances/abc/file"


def test_without_parsed_files_every_load_reads_the_file() -> None:
    core = _core("file-1")
    reader = InstanceReader(core)
    reader.load("abc")
    reader.load("abc")
    assert _uris(core).count("/instances/abc/file") == 2
