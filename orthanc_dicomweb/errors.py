"""The one exception type of the plugin: an HTTP status with a message."""

from __future__ import annotations

import json
from typing import Any


class HttpError(Exception):
    """An error that becomes an HTTP answer with this status and a JSON body."""

    def __init__(
        self,
        status: int,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"HttpStatus": self.status, "Message": self.message}
        if self.details is not None:
            body["Details"] = self.details
        return body

    def body(self) -> str:
        return json.dumps(self.to_json())


def bad_request(message: str, details: Any = None) -> HttpError:
    return HttpError(400, message, details)


def not_found(message: str, details: Any = None) -> HttpError:
    return HttpError(404, message, details)


def not_acceptable(message: str, details: Any = None) -> HttpError:
    return HttpError(406, message, details)


def unsupported_media_type(message: str, details: Any = None) -> HttpError:
    return HttpError(415, message, details)
