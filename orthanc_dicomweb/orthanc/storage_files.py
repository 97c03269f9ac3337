"""Stored DICOM files read from the core's storage directory, outside the GIL.

The Python plugin 4.0 holds the GIL during every SDK call: `GetDicomForInstance` reads the
file and copies it into a Python object with every other Python callback stopped. While 4
clients retrieved the 300-slice series, py-spy (`--gil`) found the GIL held 92 % of the time:
53 % in `SendMultipartItem`, 39 % in `GetDicomForInstance`. Python's own file reads release
the GIL, so the read of one request overlaps the other requests' work.

The core's filesystem storage keeps an attachment in `{StorageDirectory}/{uuid[0:2]}/
{uuid[2:4]}/{uuid}`, as is when it is not compressed. A file is read here only when the
attachment's information (one small core call) says it is stored uncompressed and a file of
exactly its size is at that place; anything else (a storage plugin, compression, a file deleted
meanwhile) is read through the SDK as before. After `MISSES_BEFORE_GIVING_UP` misses in a row
(e.g. a storage plugin keeps the files elsewhere), the SDK alone is used.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MISSES_BEFORE_GIVING_UP = 20


def storage_directory(configuration: Mapping[str, Any], configuration_path: Path) -> Path | None:
    """Where the core's filesystem storage keeps files (a relative path is read from the
    configuration's directory, as the core does); None when they are compressed."""
    if configuration.get("StorageCompression", False):
        return None
    base = configuration_path if configuration_path.is_dir() else configuration_path.parent
    return base / str(configuration.get("StorageDirectory", "OrthancStorage"))


class StorageFiles:
    """Reads attachments of the core's filesystem storage, given their information."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._root = str(directory)
        self._misses = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._misses < MISSES_BEFORE_GIVING_UP

    def read(self, info: Mapping[str, Any]) -> bytes | None:
        """The attachment's bytes (`info`: GET .../attachments/{name}/info), or None."""
        size = int(info.get("UncompressedSize", -1))
        if int(info.get("CompressedSize", -2)) != size:
            return None  # compressed: only the core reads it
        uuid = str(info.get("Uuid", ""))
        data = self._read_file(uuid, size) if len(uuid) > 4 else None
        self._count(data is not None)
        return data

    def read_listed(self, uuid: str, size: int) -> bytes | None:
        """The file of a listed attachment (`FileUuid`, `FileSize`: its uncompressed size), or
        None.

        A listing does not say whether the attachment is compressed: `StorageCompression` is
        off (else there is no `StorageFiles`), but files compressed before it was turned off
        stay so. Such a file of exactly the uncompressed size is all but impossible, and it
        would not hold the `DICM` magic at offset 128 that the files the core writes have; a
        file without it (e.g. stored as received, with no preamble) goes through the core too.
        """
        data = self._read_file(uuid, size) if len(uuid) > 4 else None
        self._count(data is not None)
        return data if data is not None and data[128:132] == b"DICM" else None

    def _read_file(self, uuid: str, size: int) -> bytes | None:
        """One unbuffered read into a bytes object of the expected size: no copy after it
        (reading `size + 1` to detect a longer file made Python shrink, so copy, each one)."""
        path = os.path.join(self._root, uuid[:2], uuid[2:4], uuid)
        try:
            with open(path, "rb", buffering=0) as file:
                if os.fstat(file.fileno()).st_size != size:
                    return None
                data = file.read(size)
        except OSError:
            return None
        return data if len(data) == size else None

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self._misses = 0
                return
            self._misses += 1
            if self._misses == MISSES_BEFORE_GIVING_UP:
                log.warning(
                    "Instance files are not in %s as the core's storage keeps them: "
                    "read through the SDK from now on",
                    self.directory,
                )
