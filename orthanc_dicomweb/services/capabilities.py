"""The server's capabilities (PS3.18 8.9 "Retrieve Capabilities"), as a WADL document.

Answered by `GET {Root}` with `Accept: application/vnd.sun.wadl+xml` (or `?accept=`) and by
`OPTIONS {Root}` where the core routes OPTIONS (Orthanc 1.10.1 does not: README, CORS). The
resources and methods are read from the route table itself, so the document lists exactly what
this build serves; media types and query parameters come from the table below, by the kind of
resource (the last literal segment of its path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import quoteattr

from ..errors import HttpError
from ..http.negotiation import parse_accept, quality_of
from ..http.web import Request, Response

WADL = "application/vnd.sun.wadl+xml"
DICOM = 'multipart/related; type="application/dicom"'
XML = 'multipart/related; type="application/dicom+xml"'
JSON = "application/dicom+json"
IMAGES = ("image/jpeg", "image/png", "image/gif")
SEARCH = ("includefield", "limit", "offset", "fuzzymatching", "accept", "{attributeID}")
RENDERED = ("quality", "viewport", "window", "annotation", "iccprofile", "accept")
# kind -> (media types answered to GET, its query parameters)
GET_KINDS: dict[str, tuple[Sequence[str], Sequence[str]]] = {
    "search": ((JSON, XML), SEARCH),
    "retrieve": ((DICOM, "application/zip"), ("accept",)),
    "instance": ((DICOM,), ("accept",)),
    "metadata": ((JSON, XML), ("accept",)),
    "frames": (('multipart/related; type="application/octet-stream"',), ("accept",)),
    "bulk": (('multipart/related; type="application/octet-stream"',), ("accept",)),
    "rendered": (IMAGES, RENDERED),
    "thumbnail": (IMAGES, RENDERED),
}
POST_STOW = ((DICOM, XML, JSON), (JSON, XML))
_GROUP = re.compile(r"\([^()]*\)")
_NAMES = {
    "studies": "study",
    "series": "series",
    "instances": "instance",
    "frames": "frames",
    "servers": "server",
}


def template(path_regex: str, root_regex: str) -> str | None:
    """`studies/{study}/series` from a route's pattern; None outside the DICOMweb root."""
    if not path_regex.startswith(root_regex) or not path_regex.endswith("$"):
        return None
    body = path_regex[len(root_regex) : -1].replace("(?:/(.*))?", "/(.*)").removesuffix("/?")
    segments = _GROUP.sub("\x00", body).split("/")
    named = [
        "{" + _NAMES.get(segments[i - 1], "path") + "}" if segment == "\x00" else segment
        for i, segment in enumerate(segments)
    ]
    path = "/".join(named)
    return path if re.fullmatch(r"[A-Za-z0-9_/{}.-]*", path) else None


def kind_of(path: str) -> str:
    segments = [s for s in path.split("/") if s and not s.startswith("{")]
    last = segments[-1] if segments else ""
    if last in ("studies", "series", "instances") and not path.endswith("}"):
        return "search"
    if path.endswith("}") and last == "instances":
        return "instance"
    if path.endswith("}") and last in ("studies", "series"):
        return "retrieve"
    return last


def wadl(base: str, resources: Iterable[tuple[str, Iterable[str]]]) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<application xmlns="http://wadl.dev.java.net/2009/02">',
        f"  <resources base={quoteattr(base)}>",
    ]
    for path, methods in resources:
        lines.append(f"    <resource path={quoteattr(path)}>")
        lines += [_method(method, kind_of(path)) for method in sorted(methods)]
        lines.append("    </resource>")
    lines += ["  </resources>", "</application>", ""]
    return "\n".join(lines)


def _method(method: str, kind: str) -> str:
    """One `<method>`: its query parameters and body media types, the media types answered."""
    bodies: Sequence[str] = ()
    answers, parameters = GET_KINDS.get(kind, ((), ())) if method == "GET" else ((), ())
    if method == "POST" and kind in ("search", "retrieve"):  # STOW-RS on studies[/{study}]
        bodies, answers = POST_STOW
    request = "".join(f'<param name={quoteattr(p)} style="query"/>' for p in parameters)
    request += "".join(f"<representation mediaType={quoteattr(m)}/>" for m in bodies)
    answer = "".join(f"<representation mediaType={quoteattr(m)}/>" for m in answers)
    return (
        f"      <method name={quoteattr(method)}><request>{request}</request>"
        f"<response>{answer}</response></method>"
    )


class Capabilities:
    """The handler of `{Root}`: the WADL of the routes below it."""

    def __init__(self, root: str, routes: Iterable[tuple[str, Iterable[str]]]) -> None:
        root_regex = "^" + re.escape(root)
        found = ((template(pattern, root_regex), methods) for pattern, methods in routes)
        self.resources = sorted((path, sorted(m)) for path, m in found if path)
        self.root = root

    def answer(self, request: Request) -> Response:
        if (
            request.method == "GET"
            and quality_of(parse_accept(request.header("accept")), WADL) <= 0
        ):
            raise HttpError(406, f"The DICOMweb root answers its capabilities only: Accept {WADL}")
        return Response(wadl(self.root, self.resources), WADL)
