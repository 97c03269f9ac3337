"""Instance files read from the core's storage directory (storage_files)."""

from __future__ import annotations

from pathlib import Path

from orthanc_dicomweb.orthanc.storage_files import (
    MISSES_BEFORE_GIVING_UP,
    StorageFiles,
    storage_directory,
)

UUID = "f6228527-8cf7-4681-bbc4-c679cb582fa0"


def stored(directory: Path, data: bytes, uuid: str = UUID) -> dict[str, object]:
    """A file where the core's filesystem storage puts it, and its attachment information."""
    path = directory / uuid[:2] / uuid[2:4] / uuid
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"Uuid": uuid, "CompressedSize": len(data), "UncompressedSize": len(data)}


def test_an_uncompressed_file_is_read_from_its_place(tmp_path: Path) -> None:
    info = stored(tmp_path, b"DICM" * 100)
    assert StorageFiles(tmp_path).read(info) == b"DICM" * 100


def test_a_compressed_attachment_is_left_to_the_core(tmp_path: Path) -> None:
    info = stored(tmp_path, b"zlib data") | {"UncompressedSize": 1000}
    assert StorageFiles(tmp_path).read(info) is None


def test_a_file_of_another_size_or_missing_is_left_to_the_core(tmp_path: Path) -> None:
    info = stored(tmp_path, b"short")
    files = StorageFiles(tmp_path)
    assert files.read(info | {"CompressedSize": 6, "UncompressedSize": 6}) is None
    assert files.read(info | {"Uuid": "00000000-0000-0000-0000-000000000000"}) is None


def test_misses_in_a_row_turn_direct_reads_off(tmp_path: Path) -> None:
    files = StorageFiles(tmp_path / "elsewhere")
    missing = {"Uuid": UUID, "CompressedSize": 1, "UncompressedSize": 1}
    for _ in range(MISSES_BEFORE_GIVING_UP - 1):
        files.read(missing)
    assert files.enabled
    files.read(missing)
    assert not files.enabled


def test_a_hit_resets_the_misses(tmp_path: Path) -> None:
    files = StorageFiles(tmp_path)
    missing = {"Uuid": "00000000-0000-0000-0000-000000000000", "CompressedSize": 1}
    for _ in range(MISSES_BEFORE_GIVING_UP - 1):
        files.read(missing | {"UncompressedSize": 1})
    files.read(stored(tmp_path, b"x"))
    files.read(missing | {"UncompressedSize": 1})
    assert files.enabled


def test_the_directory_is_read_as_the_core_reads_it(tmp_path: Path) -> None:
    config = tmp_path / "orthanc.json"
    config.write_text("{}")
    assert storage_directory({}, config) == tmp_path / "OrthancStorage"
    assert storage_directory({"StorageDirectory": "/data"}, config) == Path("/data")
    assert storage_directory({"StorageDirectory": "s"}, tmp_path) == tmp_path / "s"
    assert storage_directory({"StorageCompression": True}, config) is None


DICOM = b"\0" * 128 + b"DICM" + b"meta and dataset"


def test_a_listed_file_is_read_by_its_uuid_and_size(tmp_path: Path) -> None:
    stored(tmp_path, DICOM)
    assert StorageFiles(tmp_path).read_listed(UUID, len(DICOM)) == DICOM


def test_a_listed_file_without_the_dicom_magic_is_left_to_the_core(tmp_path: Path) -> None:
    """A listing does not say whether the attachment is compressed: the magic tells."""
    zlib_like = b"\x10\0\0\0\0\0\0\0x\x9c" + b"\xab" * 150
    stored(tmp_path, zlib_like)
    files = StorageFiles(tmp_path)
    assert files.read_listed(UUID, len(zlib_like)) is None
    assert files.read_listed(UUID, len(zlib_like) + 1) is None
    assert files.read_listed("", 0) is None


def test_a_listed_file_found_without_the_magic_is_not_a_miss(tmp_path: Path) -> None:
    """Files stored as received, with no preamble, are where the core keeps them."""
    stored(tmp_path, b"no preamble")
    files = StorageFiles(tmp_path)
    for _ in range(MISSES_BEFORE_GIVING_UP):
        assert files.read_listed(UUID, len(b"no preamble")) is None
    assert files.enabled
