"""The `core.Core` protocol over a live Orthanc's HTTP REST API, for tests that run the same
calls on it and on the fake (`tests/fake_core.py`)."""

from __future__ import annotations

from typing import Any

import requests

from orthanc_dicomweb.orthanc.core import CoreError


class RestCore:
    """A live Orthanc's REST API, its errors raised as the runtime raises them (CoreError)."""

    def __init__(self, url: str, config: dict[str, Any] | None = None) -> None:
        self.url = url
        self.config = dict(config or {})
        self.session = requests.Session()

    def get(self, uri: str) -> bytes:
        return self._call("GET", uri, None)

    def post(self, uri: str, body: bytes | memoryview, after_plugins: bool = False) -> bytes:
        return self._call("POST", uri, bytes(body))

    def put(self, uri: str, body: bytes) -> bytes:
        return self._call("PUT", uri, body)

    def delete(self, uri: str) -> None:
        self._call("DELETE", uri, None)

    def configuration(self) -> dict[str, Any]:
        return self.config

    def _call(self, method: str, uri: str, body: bytes | None) -> bytes:
        response = self.session.request(method, self.url + uri, data=body, timeout=60)
        if response.status_code == 200:
            return response.content
        if response.status_code == 404 and not response.content:
            # The core's answer to an unknown resource is an empty 404, which the SDK's
            # RestApiGet reports as UnknownResource.
            raise CoreError(17, "Unknown resource", uri)
        try:
            error = response.json()
            code, message = int(error["OrthancStatus"]), str(error["Message"])
        except (ValueError, KeyError, TypeError):
            code, message = -1, f"HTTP {response.status_code}"
        raise CoreError(code, message, uri)
