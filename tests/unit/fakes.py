"""A fake of the `core.Core` protocol for unit tests: canned answers per (method, uri)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.orthanc.core import CoreError


class FakeCore:
    def __init__(self, answers: dict[tuple[str, str], Any] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[tuple[str, str, bytes | None]] = []
        self.config: dict[str, Any] = {}

    def _answer(self, method: str, uri: str, body: bytes | None) -> bytes:
        self.calls.append((method, uri, body))
        if (method, uri) not in self.answers:
            raise CoreError(17, "Unknown resource", uri)
        answer = self.answers[(method, uri)]
        if callable(answer):
            answer = answer(body)
        return answer if isinstance(answer, bytes) else json.dumps(answer).encode()

    def get(self, uri: str) -> bytes:
        return self._answer("GET", uri, None)

    def post(self, uri: str, body: bytes, after_plugins: bool = False) -> bytes:
        return self._answer("POST", uri, body)

    def put(self, uri: str, body: bytes) -> bytes:
        return self._answer("PUT", uri, body)

    def delete(self, uri: str) -> None:
        self._answer("DELETE", uri, None)

    def configuration(self) -> dict[str, Any]:
        return self.config


def file_info(size: int, uuid: str = "file-1") -> dict[str, Any]:
    """The core's `/instances/{id}/attachments/dicom/info` for a stored file."""
    return {"UncompressedSize": size, "CompressedSize": size, "ContentType": 1, "Uuid": uuid}


def http_error(function: Callable[..., object], *args: Any) -> HttpError:
    """The HttpError `function(*args)` raises; the test fails when it raises none."""
    with pytest.raises(HttpError) as raised:
        function(*args)
    return raised.value
