"""`multipart/related` bodies (RFC 2046 section 5.1) for STOW-RS requests and WADO-RS answers.

A STOW-RS request arrives whole in memory (plugin 4.0 has no chunked callback), so parsing
must not copy it again: delimiters are found with `bytes.find` and each part's body is a
`memoryview` slice of the request. `iter_multipart` yields parts as it finds them, so a caller
can store each instance before the next one is even located, and `ReleasableBody` hands the
memory of the parts already stored back to the OS. A body read from the network in chunks (the
DICOMweb client's retrieve) goes through `iter_streamed_parts`, which keeps one part at a time.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import secrets
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from types import MappingProxyType
from typing import TypeGuard

from ..errors import HttpError, bad_request
from .negotiation import parse_media_type, quote_parameter

log = logging.getLogger(__name__)

CRLF = b"\r\n"
# RFC 2046 allows 70 characters; some clients send longer ones, which costs nothing to accept.
MAX_BOUNDARY_LENGTH = 200
# What follows a delimiter, besides the start of the next part: the close delimiter's "--"
# (no part follows), or the end of the buffer before this can be told (streaming reads more).
_CLOSED, _INCOMPLETE = -2, -1


@dataclass(frozen=True)
class Part:
    """One body part: its headers (lower-case names) and its payload, a view on the request."""

    headers: Mapping[str, str]
    body: memoryview
    offset: int = 0  # where the payload starts in the request body

    @property
    def end(self) -> int:
        """Where the payload ends in the request body."""
        return self.offset + len(self.body)

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


def parse_multipart(body: bytes, boundary: str, max_parts: int | None = None) -> list[Part]:
    """All the parts of a multipart body (see `iter_multipart`); HttpError 413 as soon as
    there are more than `max_parts`, without reading the rest (a million empty parts cost
    18 s and 1 GB of memory to parse whole)."""
    if max_parts is None:
        return list(iter_multipart(body, boundary))
    parts = list(islice(iter_multipart(body, boundary), max_parts + 1))
    if len(parts) > max_parts:
        raise HttpError(413, f"More than {max_parts} parts in a multipart body (the limit)")
    return parts


def iter_multipart(body: bytes, boundary: str) -> Iterator[Part]:
    """Yield the parts one by one, without copying their payloads.

    The preamble and the epilogue are ignored. Errors (HttpError 400) are raised when they are
    reached: the complete parts before a truncation are yielded first.
    """
    if not body:
        raise bad_request("Empty multipart body")
    dash_boundary = _dash_boundary(boundary)
    delimiter = CRLF + dash_boundary
    view = memoryview(body)

    position = _first_part_start(body, dash_boundary, delimiter)
    while position >= 0:  # position: start of a part; -1 once the close delimiter is read
        next_start, after = _find_next(body, delimiter, position)
        if next_start is None:
            raise bad_request("Truncated multipart body: no closing boundary")
        yield _make_part(body, view, position, next_start)
        position = after


def iter_streamed_parts(chunks: Iterable[bytes], boundary: str) -> Iterator[bytes]:
    """The payloads of a multipart body read in chunks, each yielded as soon as it is complete.

    Unlike `iter_multipart`, the body is never whole in memory: only the part being received
    is kept, and each payload is copied once out of it. HttpError 400 when the body ends early.
    """
    delimiter = CRLF + _dash_boundary(boundary)
    buffer = bytearray(CRLF)  # so that a boundary opening the body is a delimiter too
    in_part, scan = False, 0
    for chunk in chunks:
        buffer += chunk
        while True:
            found = buffer.find(delimiter, scan)
            if found < 0:
                scan = max(0, len(buffer) - len(delimiter) + 1)
                break
            after = _delimiter_line_end(buffer, found, len(delimiter))
            if after == _INCOMPLETE:
                scan = found  # the rest of the delimiter line is still to come
                break
            if after is None:  # a look-alike inside a payload
                scan = found + 1
                continue
            if in_part:
                yield _streamed_payload(buffer, found)
            if after == _CLOSED:
                return
            del buffer[:after]
            in_part, scan = True, 0
    raise bad_request("Truncated multipart body: no closing boundary")


class ReleasableBody:
    """Hands the memory of a request body's consumed bytes back to the OS, page by page.

    Plugin 4.0 gives Python its own copy of the request body, on top of the core's: a 500 MB
    STOW-RS holds 1 GB before the first instance is stored. Once an instance is stored, its
    bytes are never read again, so their pages are released (`madvise(MADV_DONTNEED)`): the
    copy shrinks while the core's storage grows. Released bytes read as zeros afterwards, so
    only a body owned by the request alone (as every body the runtime hands over) may be given.
    Small bodies are left alone: they live in the allocator's heap, not in a mapping of their
    own, and holding them costs little.
    """

    MINIMUM_SIZE = 32 * 2**20  # glibc maps any block above its largest mmap threshold (32 MiB)

    def __init__(self, body: bytes) -> None:
        self._body = body  # keeps the memory alive while pages are released
        self._start = _address_of(body) if len(body) >= self.MINIMUM_SIZE else None
        self._released = 0 if self._start is None else _page_ceiling(self._start)

    def release_until(self, offset: int) -> None:
        """Give back the whole pages before `offset` (the bytes from `offset` on stay intact)."""
        if self._start is None:
            return
        end = _page_floor(self._start + min(offset, len(self._body)))
        if end > self._released:
            _madvise_dontneed(self._released, end - self._released)
            self._released = end


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
    return b"".join((part_head(content_type, extra_headers, boundary), body, CRLF))


def part_head(content_type: str, extra_headers: Mapping[str, str] | None, boundary: str) -> bytes:
    """A part's delimiter line and headers, up to the empty line before its body."""
    lines = [f"--{boundary}", f"Content-Type: {content_type}"]
    lines += [f"{name}: {value}" for name, value in (extra_headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def encode_multipart(
    parts: Iterable[tuple[bytes | memoryview, str, Mapping[str, str] | None]], boundary: str
) -> bytes:
    """A whole multipart body from `(payload, content type, extra headers)` triples, joined
    once: each payload is copied only into the body (a large instance is not held twice)."""
    chunks: list[bytes | memoryview] = []
    for payload, content_type, headers in parts:
        chunks += (part_head(content_type, headers, boundary), payload, CRLF)
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


def _dash_boundary(boundary: str) -> bytes:
    if not boundary:
        raise bad_request("Empty multipart boundary")
    if not boundary.isascii():
        raise bad_request("Multipart boundary must be ASCII")
    return b"--" + boundary.encode("ascii")


def _find_next(body: bytes, delimiter: bytes, start: int) -> tuple[int | None, int]:
    """Where the part starting at `start` ends, and where the next part starts (-1: no more)."""
    search = start
    while True:
        found = body.find(delimiter, search)
        if found < 0:
            return None, -1
        after = _delimiter_line_end(body, found, len(delimiter))
        if after == _CLOSED:
            return found, -1
        if _starts_a_part(after):
            return found, after
        # A look-alike ("--boundaryX..." inside a payload): not a delimiter, keep looking.
        search = found + 1


def _first_part_start(body: bytes, dash_boundary: bytes, delimiter: bytes) -> int:
    """Where the first part starts (-1: the body holds no part); HttpError 400 if no boundary."""
    # The first delimiter may open the body, without the CRLF that precedes the later ones.
    if body.startswith(dash_boundary):
        after = _delimiter_line_end(body, 0, len(dash_boundary))
        if after == _CLOSED:
            return -1
        if _starts_a_part(after):
            return after
    search = 0
    while True:
        found = body.find(delimiter, search)
        if found < 0:
            raise bad_request("Multipart boundary not found in the body")
        after = _delimiter_line_end(body, found, len(delimiter))
        if after == _CLOSED:
            return -1
        if _starts_a_part(after):
            return after
        search = found + 1


def _delimiter_line_end(buffer: bytes | bytearray, found: int, length: int) -> int | None:
    """The first byte after the delimiter line at `found` (transport padding, then CRLF).

    `_CLOSED` for the close delimiter, None for a look-alike that is no delimiter, and
    `_INCOMPLETE` when the buffer ends before this can be told.
    """
    position = found + length
    if len(buffer) < position + 2:
        return _INCOMPLETE
    if buffer.startswith(b"--", position):
        return _CLOSED
    while position < len(buffer) and buffer[position] in b" \t":  # transport padding
        position += 1
    if buffer.startswith(CRLF, position):
        return position + 2
    if buffer.startswith(b"\n", position):  # bare LF: sent by some hand-written clients
        return position + 1
    return _INCOMPLETE if len(buffer) - position < 2 else None


def _starts_a_part(after_delimiter: int | None) -> TypeGuard[int]:
    return after_delimiter is not None and after_delimiter >= 0


def _payload_bounds(buffer: bytes | bytearray, start: int, end: int) -> tuple[int, int]:
    """(end of the header block, start of the payload) of the part in `buffer[start:end]`."""
    if buffer.startswith(CRLF, start):  # no headers at all: the empty line comes first
        return start, start + 2
    header_end = buffer.find(CRLF + CRLF, start, end)
    if header_end >= 0:
        return header_end, header_end + 4
    if (
        end - start <= 1024
        and buffer.endswith(CRLF, start, end)
        and buffer.find(b":", start, end) >= 0
    ):
        # Headers and no body at all (RFC 2046 allows it): the last header's CRLF ends the part.
        return end - 2, end
    raise bad_request("Multipart part whose header block never ends")


def _make_part(body: bytes, view: memoryview, start: int, end: int) -> Part:
    header_end, payload = _payload_bounds(body, start, end)
    headers = _parse_headers(body[start:header_end]) if header_end > start else _NO_HEADERS
    return Part(headers, view[payload:end], payload)


def _streamed_payload(buffer: bytearray, end: int) -> bytes:
    """The payload of the part filling `buffer[:end]`, copied once (the buffer changes next)."""
    _, payload = _payload_bounds(buffer, 0, end)
    with memoryview(buffer) as view:
        return view[payload:end].tobytes()


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def _parse_headers(block: bytes) -> Mapping[str, str]:
    headers: dict[str, str] = {}
    # Headers are ASCII in practice; latin-1 never fails and keeps any odd byte visible.
    for line in block.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise bad_request(f"Malformed header line in multipart part: {line[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    return MappingProxyType(headers)


def _page_floor(address: int) -> int:
    return address - address % mmap.PAGESIZE


def _page_ceiling(address: int) -> int:
    return _page_floor(address + mmap.PAGESIZE - 1)


def _address_of(body: bytes) -> int | None:
    """Where the bytes of `body` are in memory; None where pages cannot be released."""
    if _LIBC is None:
        return None
    return ctypes.cast(ctypes.c_char_p(body), ctypes.c_void_p).value


def _madvise_dontneed(address: int, length: int) -> None:
    if _LIBC is None:  # not reached: _address_of gave no address to release
        return
    if _LIBC.madvise(ctypes.c_void_p(address), ctypes.c_size_t(length), _MADV_DONTNEED) != 0:
        # Harmless (the memory is only kept longer), but worth knowing.
        log.info("madvise failed (errno %d): request memory kept", ctypes.get_errno())


_MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", 4)
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


__all__ = [
    "Part",
    "ReleasableBody",
    "boundary_of",
    "encode_multipart",
    "encode_part",
    "iter_multipart",
    "iter_streamed_parts",
    "multipart_content_type",
    "new_boundary",
    "parse_multipart",
]
