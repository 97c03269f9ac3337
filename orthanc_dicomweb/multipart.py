"""`multipart/related` bodies (RFC 2046 section 5.1) for STOW-RS requests and WADO-RS answers.

A STOW-RS request arrives whole in memory (plugin 4.0 has no chunked callback), so parsing
must not copy it again: delimiters are found with `bytes.find` and each part's body is a
`memoryview` slice of the request. `iter_multipart` yields parts as it finds them, so a caller
can store each instance before the next one is even located.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from orthanc_dicomweb.errors import bad_request
from orthanc_dicomweb.negotiation import parse_media_type, quote_parameter

CRLF = b"\r\n"
# RFC 2046 allows 70 characters; some clients send longer ones, which costs nothing to accept.
MAX_BOUNDARY_LENGTH = 200


@dataclass(frozen=True)
class Part:
    """One body part: its headers (lower-case names) and its payload, a view on the request."""

    headers: Mapping[str, str]
    body: memoryview

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def content_location(self) -> str | None:
        return self.headers.get("content-location")


def boundary_of(content_type_header: str) -> str:
    """The `boundary` parameter of a multipart `Content-Type`; HttpError 400 if missing."""
    boundary = parse_media_type(content_type_header).param("boundary")
    if not boundary:
        raise bad_request(f"No boundary in Content-Type: {content_type_header!r}")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise bad_request("Multipart boundary too long")
    return boundary


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    """All the parts of a multipart body (see `iter_multipart`)."""
    return list(iter_multipart(body, boundary))


def iter_multipart(body: bytes, boundary: str) -> Iterator[Part]:
    """Yield the parts one by one, without copying their payloads.

    The preamble and the epilogue are ignored. Errors (HttpError 400) are raised when they are
    reached: the complete parts before a truncation are yielded first.
    """
    if not body:
        raise bad_request("Empty multipart body")
    if not boundary:
        raise bad_request("Empty multipart boundary")
    if not boundary.isascii():
        raise bad_request("Multipart boundary must be ASCII")
    dash_boundary = b"--" + boundary.encode("ascii")
    delimiter = CRLF + dash_boundary
    view = memoryview(body)

    position = _first_part_start(body, dash_boundary, delimiter)
    while position >= 0:  # position: start of a part; -1 once the close delimiter is read
        next_start, after = _find_next(body, delimiter, position)
        if next_start is None:
            raise bad_request("Truncated multipart body: no closing boundary")
        yield _make_part(body, view, position, next_start)
        position = after


def new_boundary() -> str:
    """A fresh random boundary (a token: it needs no quoting)."""
    return "DICOMwebBoundary-" + secrets.token_hex(16)


def encode_part(
    body: bytes | memoryview,
    content_type: str,
    extra_headers: Mapping[str, str] | None = None,
    *,
    boundary: str,
) -> bytes:
    """One part, starting with its delimiter line and ending with the CRLF before the next."""
    lines = [f"--{boundary}", f"Content-Type: {content_type}"]
    lines += [f"{name}: {value}" for name, value in (extra_headers or {}).items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return b"".join((head, body, CRLF))


def encode_multipart(
    parts: Iterable[tuple[bytes | memoryview, str, Mapping[str, str] | None]], boundary: str
) -> bytes:
    """A whole multipart body from `(payload, content type, extra headers)` triples."""
    chunks = [
        encode_part(payload, content_type, headers, boundary=boundary)
        for payload, content_type, headers in parts
    ]
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)


def multipart_content_type(
    part_type: str, boundary: str, extra_params: Mapping[str, str] | None = None
) -> str:
    """E.g. `multipart/related; type="application/dicom"; boundary=...`."""
    # `type` is always quoted: its "/" is not a token character, and some clients insist.
    params = [f'type="{part_type}"']
    params += [f"{name}={quote_parameter(value)}" for name, value in (extra_params or {}).items()]
    params.append(f"boundary={quote_parameter(boundary)}")
    return "multipart/related; " + "; ".join(params)


def _find_next(body: bytes, delimiter: bytes, start: int) -> tuple[int | None, int]:
    """Where the part starting at `start` ends, and where the next part starts (-1: no more)."""
    search = start
    while True:
        found = body.find(delimiter, search)
        if found < 0:
            return None, -1
        end_of_delimiter = found + len(delimiter)
        if body.startswith(b"--", end_of_delimiter):
            return found, -1
        after = _after_delimiter(body, found, len(delimiter))
        if after is not None:
            return found, after
        # A look-alike ("--boundaryX..." inside a payload): not a delimiter, keep looking.
        search = found + 1


def _first_part_start(body: bytes, dash_boundary: bytes, delimiter: bytes) -> int:
    """Where the first part starts (-1: the body holds no part); HttpError 400 if no boundary."""
    # The first delimiter may open the body, without the CRLF that precedes the later ones.
    if body.startswith(dash_boundary):
        if body.startswith(b"--", len(dash_boundary)):
            return -1
        after = _after_delimiter(body, 0, len(dash_boundary))
        if after is not None:
            return after
    search = 0
    while True:
        found = body.find(delimiter, search)
        if found < 0:
            raise bad_request("Multipart boundary not found in the body")
        if body.startswith(b"--", found + len(delimiter)):
            return -1
        after = _after_delimiter(body, found, len(delimiter))
        if after is not None:
            return after
        search = found + 1


def _after_delimiter(body: bytes, found: int, length: int) -> int | None:
    """The first byte after a delimiter line (padding then CRLF), or None if it is not one."""
    position = found + length
    while position < len(body) and body[position] in b" \t":  # transport padding
        position += 1
    if body.startswith(CRLF, position):
        return position + 2
    if body.startswith(b"\n", position):  # bare LF: sent by some hand-written clients
        return position + 1
    return None


def _make_part(body: bytes, view: memoryview, start: int, end: int) -> Part:
    if body.startswith(CRLF, start):  # no headers at all: the empty line comes first
        return Part(MappingProxyType({}), view[start + 2 : end])
    header_end = body.find(CRLF + CRLF, start, end)
    if header_end >= 0:
        headers = _parse_headers(bytes(view[start:header_end]))
        return Part(headers, view[header_end + 4 : end])
    if end - start <= 1024 and body.endswith(CRLF, start, end) and b":" in body[start:end]:
        # Headers and no body at all (RFC 2046 allows it): the last header's CRLF ends the part.
        return Part(_parse_headers(bytes(view[start : end - 2])), view[end:end])
    raise bad_request("Multipart part whose header block never ends")


def _parse_headers(block: bytes) -> Mapping[str, str]:
    headers: dict[str, str] = {}
    # Headers are ASCII in practice; latin-1 never fails and keeps any odd byte visible.
    for line in block.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise bad_request(f"Malformed header line in multipart part: {line[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    return MappingProxyType(headers)


__all__ = [
    "Part",
    "boundary_of",
    "encode_multipart",
    "encode_part",
    "iter_multipart",
    "multipart_content_type",
    "new_boundary",
    "parse_multipart",
]
