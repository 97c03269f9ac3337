"""Absolute URLs that answers point to (RetrieveURL, BulkDataURI), as the client sees them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..config import Configuration
from .web import Request

_FORWARDED_PAIR = re.compile(r'(\w+)\s*=\s*("[^"]*"|[^;,\s]*)')


def _forwarded(header: str) -> dict[str, str]:
    """The first element of an RFC 7239 `Forwarded` header, as a dict of lower-case keys."""
    first = header.split(",")[0]
    return {k.lower(): v.strip('"') for k, v in _FORWARDED_PAIR.findall(first)}


def _scheme_and_host(config: Configuration, request: Request) -> tuple[str, str]:
    scheme = "https" if config.ssl else "http"
    host = config.host or request.header("host") or "localhost"
    forwarded = _forwarded(request.header("forwarded") or "")
    if forwarded.get("host"):
        host = forwarded["host"]
    elif request.header("x-forwarded-host"):
        host = request.header("x-forwarded-host", "").split(",")[0].strip()
    if forwarded.get("proto"):
        scheme = forwarded["proto"]
    elif request.header("x-forwarded-proto"):
        scheme = request.header("x-forwarded-proto", "").split(",")[0].strip()
    return scheme, host


def dicomweb_base(config: Configuration, request: Request) -> str:
    """Base URL of the DICOMweb API, ending with '/', e.g. `http://host:8042/dicom-web/`.

    `PublicRoot` wins (a full URL, or a path joined to the request's host); otherwise the
    `Forwarded`, `X-Forwarded-Host`/`-Proto` and `Host` headers describe what the client used.
    """
    scheme, host = _scheme_and_host(config, request)
    if config.public_root:
        public = config.public_root.strip("/")
        if urlsplit(public).scheme:
            return public.rstrip("/") + "/"
        return f"{scheme}://{host}/{public}/" if public else f"{scheme}://{host}/"
    return f"{scheme}://{host}{config.root}"


def study_url(base: str, study: str) -> str:
    return f"{base}studies/{study}"


def series_url(base: str, study: str, series: str) -> str:
    return f"{study_url(base, study)}/series/{series}"


def instance_url(base: str, study: str, series: str, instance: str) -> str:
    return f"{series_url(base, study, series)}/instances/{instance}"
