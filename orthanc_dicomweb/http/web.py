"""Requests, responses and the single place where errors become HTTP answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from ..errors import HttpError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One HTTP request, as plain values (header names in lower case)."""

    method: str
    path: str
    groups: tuple[str, ...] = ()
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @overload
    def header(self, name: str, default: str) -> str: ...
    @overload
    def header(self, name: str, default: None = None) -> str | None: ...
    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    """A complete answer held in memory."""

    body: bytes | str | memoryview = b""  # memoryview: a file mapped in memory (zip_retrieve)
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class MultipartResponse:
    """A multipart/related answer sent one part at a time (parts is consumed lazily)."""

    part_content_type: str
    parts: Iterable[bytes]
    subtype: str = "related"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Redirect:
    location: str


Answer = Response | MultipartResponse | Redirect
Handler = Callable[[Request], Answer]


def json_response(
    value: Any, status: int = 200, content_type: str = "application/json"
) -> Response:
    return Response(json.dumps(value).encode(), content_type, status)


def error_response(error: HttpError) -> Response:
    return Response(error.body(), "application/json", error.status, dict(error.headers))


def method_not_allowed(allowed: Iterable[str]) -> HttpError:
    methods = ",".join(sorted(allowed))
    return HttpError(
        405, f"Method not allowed here; allowed: {methods}", headers={"Allow": methods}
    )


def handle(handlers: Mapping[str, Handler], request: Request) -> Answer:
    """Run the handler for the request's method, turning every failure into an answer."""
    handler = handlers.get(request.method)
    try:
        if handler is None:
            raise method_not_allowed(handlers)
        return handler(request)
    except HttpError as error:
        if error.status >= 500:
            log.error("%s %s: %s", request.method, request.path, error.message)
        return error_response(error)
    except Exception as error:  # a real internal error: log it, never leak a trace
        log.exception("Internal error on %s %s", request.method, request.path)
        return error_response(HttpError(500, "Internal error in the DICOMweb plugin", str(error)))
