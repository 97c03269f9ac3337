"""The DICOMweb client web application: its static files, `{root}info`, Orthanc Explorer's script.

The files of `app/client/` are read once into memory, and only those files are served: a
request names a key of that table or gets 404, so no path (`..`, encoded separators, absolute
paths) can reach anything else on disk.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import __version__
from ..config import Configuration, ServerDefinition
from ..errors import not_found
from ..http.urls import dicomweb_base
from ..http.web import Redirect, Request, Response, json_response
from .servers import ServerRegistry, operations_of

APP_DIRECTORY = Path(__file__).resolve().parent / "app"
CLIENT_DIRECTORY = APP_DIRECTORY / "client"
EXPLORER_SCRIPT = APP_DIRECTORY / "explorer.js"
ROOT_PLACEHOLDER = "__DICOMWEB_ROOT__"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
# Filenames are not versioned, so browsers must revalidate; the ETag makes that a cheap 304.
CACHE_CONTROL = "no-cache"
PAGE = "app/client/index.html"  # below the DICOMweb root
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_static_files(directory: Path) -> dict[str, StaticFile]:
    """Every servable file below `directory`, by its relative path with '/' separators."""
    files = {}
    for path in sorted(directory.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if path.is_file() and content_type is not None:
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            files[path.relative_to(directory).as_posix()] = StaticFile(body, content_type, etag)
    return files


def is_safe_relative_path(path: str) -> bool:
    """Plain names separated by '/': no '..', no '%', no '\\', no absolute or empty segment."""
    return bool(path) and all(_SAFE_NAME.match(segment) for segment in path.split("/"))


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [value.strip().removeprefix("W/") for value in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def orthanc_api_root(config: Configuration) -> str:
    """Orthanc's root relative to the DICOMweb root, e.g. `./../` for `/dicom-web/`."""
    depth = len([segment for segment in config.root.split("/") if segment])
    return "./" + "../" * depth


def explorer_script(config: Configuration) -> str:
    """The Orthanc Explorer extension, pointed at the configured root."""
    return EXPLORER_SCRIPT.read_text(encoding="utf-8").replace(
        ROOT_PLACEHOLDER, json.dumps(config.root)
    )


class WebApplication:
    """`GET {root}app/client/{file}` and `GET {root}info`."""

    def __init__(
        self,
        config: Configuration,
        servers: ServerRegistry,
        directory: Path = CLIENT_DIRECTORY,
    ) -> None:
        self.config = config
        self.servers = servers
        self.files = load_static_files(directory)

    def _page_location(self) -> str:
        """Where the application's page is: below `PublicRoot`, or the root's path on this host
        (Orthanc drops a trailing slash from the URI: a relative location cannot be resolved).

        Never built from `Host` or `X-Forwarded-Host`: anyone can send those, and a redirect
        to the host they name would send users to a site of the sender's choice.
        """
        if self.config.public_root:
            public = self.config.public_root.strip("/")
            if urlsplit(public).scheme:  # a full URL, from the configuration
                return f"{public}/{PAGE}"
            return f"/{public}/{PAGE}" if public else f"/{PAGE}"
        return self.config.root + PAGE

    def static_file(self, request: Request) -> Response | Redirect:
        name = request.groups[0] if request.groups else ""
        if name == "":
            return Redirect(self._page_location())
        found = self.files.get(name) if is_safe_relative_path(name) else None
        if found is None:
            raise not_found(f"No such file in the DICOMweb client application: {name!r}")
        headers = {
            "ETag": found.etag,
            "Cache-Control": CACHE_CONTROL,
            "X-Content-Type-Options": "nosniff",
        }
        if etag_matches(request.header("if-none-match"), found.etag):
            return Response(b"", found.content_type, 304, headers)
        return Response(found.body, found.content_type, 200, headers)

    def info(self, request: Request) -> Response:
        """What the client application needs to know about this plugin and its servers."""
        return json_response(self.describe(request))

    def describe(self, request: Request) -> dict[str, Any]:
        servers = self.servers.all()
        return {
            "DicomWebRoot": self.config.root,
            "OrthancApiRoot": orthanc_api_root(self.config),
            "DicomWebUrl": dicomweb_base(self.config, request),
            "Version": __version__,
            "ServersInDatabase": self.config.servers_in_database,
            "ReadOnly": self.config.read_only,
            "Servers": [server_summary(server) for _, server in sorted(servers.items())],
        }


def server_summary(server: ServerDefinition) -> dict[str, Any]:
    """What the page shows and edits of a server: never a secret, only whether one is set
    (the page shows "unchanged", and `POST {root}servers/{name}` keeps what is not sent)."""
    return {
        "Name": server.name,
        "Url": server.public_url,  # without credentials written into it
        "Username": server.username,
        "HasPassword": server.password is not None,
        "HasDelete": server.has_delete,
        "HttpHeaders": sorted(server.http_headers),  # names only: values may be tokens
        "Operations": operations_of(server),
    }
