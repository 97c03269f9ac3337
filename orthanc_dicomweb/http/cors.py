"""Cross-origin resource sharing (CORS) for browser-based DICOMweb clients (`DicomWeb.Cors`).

Off by default: without `AllowedOrigins` no answer carries an `Access-Control-*` header, and
browsers keep other origins' pages from reading answers. When on, every answer to an allowed
`Origin` carries `Access-Control-Allow-Origin` (and `-Credentials`, `-Expose-Headers`), errors
included; `*` is refused together with credentials (browsers would refuse it anyway).

Preflights (`OPTIONS`) are answered here, but Orthanc 1.10.1 answers every `OPTIONS` itself
(404, before any plugin or filter sees it): a reverse proxy has to pass them on as a `GET` with
the header `X-Cors-Preflight` (README: "CORS"), which this module answers the same way.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from ..errors import HttpError, bad_request
from .web import Request, Response

DEFAULT_METHODS = ("GET", "POST", "DELETE")
DEFAULT_HEADERS = ("Accept", "Content-Type", "Authorization", "If-None-Match", "Range")
DEFAULT_MAX_AGE = 600
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
EXPOSED_HEADERS = "ETag, Content-Location, Location, Warning, Allow, Content-Disposition"
PREFLIGHT_HEADER = "x-cors-preflight"
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_ORIGIN = re.compile(r"^https?://[^/\s]+$", re.IGNORECASE)


@dataclass(frozen=True)
class CorsOptions:
    """`DicomWeb.Cors`; an empty `allowed_origins` turns CORS off."""

    allowed_origins: tuple[str, ...] = ()
    allowed_methods: tuple[str, ...] = DEFAULT_METHODS
    allowed_headers: tuple[str, ...] = DEFAULT_HEADERS
    allow_credentials: bool = False
    max_age: int = DEFAULT_MAX_AGE

    def __post_init__(self) -> None:
        for origin in self.allowed_origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"AllowedOrigins: {origin!r} is no origin (http[s]://host[:port])")
        if "*" in self.allowed_origins and self.allow_credentials:
            raise ValueError('AllowedOrigins "*" cannot go with AllowCredentials (PS3.18, Fetch)')
        unknown = sorted(set(m.upper() for m in self.allowed_methods) - KNOWN_METHODS)
        if unknown:
            raise ValueError(f"AllowedMethods: unknown {unknown}; known: {sorted(KNOWN_METHODS)}")
        if any(not _TOKEN.match(header) for header in self.allowed_headers):
            raise ValueError(f"AllowedHeaders: not all header names: {self.allowed_headers}")

    @property
    def enabled(self) -> bool:
        return bool(self.allowed_origins)


class CorsPolicy:
    """The `Access-Control-*` headers of answers, and preflight answers."""

    def __init__(self, options: CorsOptions) -> None:
        self.options = options
        self._origins = {origin.lower().rstrip("/") for origin in options.allowed_origins}
        self._methods = {method.upper() for method in options.allowed_methods}
        self._headers = {header.lower() for header in options.allowed_headers}

    @property
    def enabled(self) -> bool:
        return self.options.enabled

    def allowed_origin(self, request: Request) -> str | None:
        """The value of `Access-Control-Allow-Origin` for this request, None if not allowed."""
        origin = request.header("origin")
        if not self.enabled or not origin:
            return None
        if origin.lower().rstrip("/") in self._origins:
            return origin
        return "*" if "*" in self._origins else None

    def headers(self, request: Request) -> dict[str, str]:
        """What an answer to this request carries (also for a refused origin: `Vary`)."""
        if not self.enabled:
            return {}
        headers = {"Vary": "Origin"}
        origin = self.allowed_origin(request)
        if origin is not None:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            if self.options.allow_credentials:
                headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def preflight(self, request: Request, route_methods: Collection[str]) -> Response:
        """The answer to a preflight on a route serving `route_methods`: 204, else 4xx."""
        method = (request.header("access-control-request-method") or "").strip()
        if not _TOKEN.match(method):
            raise bad_request(
                f"Preflight without a valid Access-Control-Request-Method: {method!r}"
            )
        if self.allowed_origin(request) is None:
            raise HttpError(403, f"Origin not allowed by DicomWeb.Cors: {request.header('origin')}")
        served = self._methods & {m.upper() for m in route_methods}
        if method.upper() not in served:
            allowed = ", ".join(sorted(served))
            raise HttpError(405, f"Method {method} not allowed here from other origins", allowed)
        refused = sorted(self._refused_headers(request))
        if refused:
            raise HttpError(403, "Request headers not allowed by DicomWeb.Cors", refused)
        return Response(b"", "text/plain", 204, self._preflight_headers(request, served))

    def _refused_headers(self, request: Request) -> set[str]:
        asked = request.header("access-control-request-headers") or ""
        names = {name.strip().lower() for name in asked.split(",") if name.strip()}
        return names - self._headers

    def _preflight_headers(self, request: Request, methods: Collection[str]) -> dict[str, str]:
        return self.headers(request) | {
            "Access-Control-Allow-Methods": ", ".join(sorted(methods)),
            "Access-Control-Allow-Headers": ", ".join(self.options.allowed_headers),
            "Access-Control-Max-Age": str(self.options.max_age),
        }


def is_preflight(request: Request) -> bool:
    """An `OPTIONS` preflight, or one a reverse proxy passed on as a GET (see module doc)."""
    if request.method == "OPTIONS":
        return request.header("access-control-request-method") is not None
    return request.method == "GET" and request.header(PREFLIGHT_HEADER) is not None
