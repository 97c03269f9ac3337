"""Helpers of the unit tests: the fake core (`tests/fake_core.py`, answering from DICOM files it
holds, or canned answers per (method, uri)), the core's file information, an HttpError raised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orthanc_dicomweb.errors import HttpError
from tests.fake_core import FakeCore

__all__ = ["FakeCore", "file_info", "http_error"]


def file_info(size: int, uuid: str = "file-1") -> dict[str, Any]:
    """The core's `/instances/{id}/attachments/dicom/info` for a stored file."""
    return {"UncompressedSize": size, "CompressedSize": size, "ContentType": 1, "Uuid": uuid}


def http_error(function: Callable[..., object], *args: Any) -> HttpError:
    """The HttpError `function(*args)` raises; the test fails when it raises none."""
    with pytest.raises(HttpError) as raised:
        function(*args)
    return raised.value
