from __future__ import annotations

import ctypes
import mmap
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.multipart import (
    ReleasableBody,
    boundary_of,
    encode_multipart,
    encode_part,
    iter_multipart,
    iter_streamed_parts,
    multipart_content_type,
    new_boundary,
    parse_multipart,
)

BOUNDARY = "b0undary"


def raw(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    """A body built by hand, parts already holding their headers."""
    body = preamble
    for part in parts:
        body += b"\r\n--" + BOUNDARY.encode() + b"\r\n" + part
    return body + b"\r\n--" + BOUNDARY.encode() + b"--" + epilogue


def test_round_trip_keeps_payloads_and_headers() -> None:
    boundary = new_boundary()
    payloads = [b"\x00DICM\r\n\r\n--" + bytes(range(256)), b"", b"second"]
    body = encode_multipart(
        [
            (payloads[0], "application/dicom", {"Content-Location": "/a"}),
            (payloads[1], "application/octet-stream", None),
            (payloads[2], 'application/dicom; transfer-syntax="1.2.840.10008.1.2.1"', None),
        ],
        boundary,
    )
    parts = parse_multipart(body, boundary)
    assert [bytes(part.body) for part in parts] == payloads
    assert parts[0].content_type == "application/dicom"
    assert parts[0].content_location == "/a"
    assert parts[1].content_location is None
    assert parts[2].content_type == 'application/dicom; transfer-syntax="1.2.840.10008.1.2.1"'


def test_body_may_start_directly_with_the_boundary() -> None:
    body = b"--" + BOUNDARY.encode() + b"\r\nContent-Type: a/b\r\n\r\nxyz\r\n--" + BOUNDARY.encode()
    body += b"--\r\n"
    (part,) = parse_multipart(body, BOUNDARY)
    assert bytes(part.body) == b"xyz"
    assert part.headers == {"content-type": "a/b"}


def test_preamble_and_epilogue_are_ignored() -> None:
    body = raw(
        b"Content-Type: a/b\r\n\r\none",
        preamble=b"This is a preamble with --b0undar y",
        epilogue=b"\r\nan epilogue\r\n--b0undary\r\n",
    )
    assert [bytes(part.body) for part in parse_multipart(body, BOUNDARY)] == [b"one"]


def test_crlf_and_dashes_inside_payload() -> None:
    payload = b"\r\n\r\n--\r\n--b0und\r\n-- b0undary\r\n\r\n"
    body = raw(b"Content-Type: application/dicom\r\n\r\n" + payload)
    assert bytes(parse_multipart(body, BOUNDARY)[0].body) == payload


def test_boundary_look_alike_followed_by_other_characters_is_payload() -> None:
    payload = b"abc\r\n--b0undaryX not a delimiter\r\n--b0undary-ish"
    body = raw(b"Content-Type: a/b\r\n\r\n" + payload, b"Content-Type: a/b\r\n\r\n2")
    parts = parse_multipart(body, BOUNDARY)
    # "--b0undary-ish" is followed by "-i", not "--": still payload.
    assert [bytes(part.body) for part in parts] == [payload, b"2"]


def test_part_without_headers_and_transport_padding() -> None:
    body = b"--b0undary  \r\n\r\nno headers\r\n--b0undary\t\r\nX-A: 1\r\n\r\n\r\n--b0undary--"
    parts = parse_multipart(body, BOUNDARY)
    assert parts[0].headers == {}
    assert bytes(parts[0].body) == b"no headers"
    assert parts[1].headers == {"x-a": "1"}
    assert bytes(parts[1].body) == b""


def test_headers_without_body() -> None:
    body = b"--b0undary\r\nContent-Type: a/b\r\n\r\n--b0undary--"
    (part,) = parse_multipart(body, BOUNDARY)
    assert part.content_type == "a/b"
    assert bytes(part.body) == b""


def test_no_parts_at_all() -> None:
    assert parse_multipart(b"--b0undary--\r\n", BOUNDARY) == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "Empty"),
        (b"no delimiter here", "not found"),
        (b"--b0undaryX\r\nabc", "not found"),
        (b"--b0undary\r\nContent-Type: a/b\r\n\r\ntruncated", "Truncated"),
        (b"--b0undary\r\nContent-Type: a/b no end\r\n--b0undary--", "never ends"),
        (b"--b0undary\r\nno colon here\r\n\r\nx\r\n--b0undary--", "Malformed header"),
    ],
)
def test_errors_are_bad_requests(body: bytes, words: str) -> None:
    with pytest.raises(HttpError) as caught:
        parse_multipart(body, BOUNDARY)
    assert caught.value.status == 400
    assert words in caught.value.message


def test_iterator_yields_complete_parts_before_reporting_truncation() -> None:
    body = raw(b"Content-Type: a/b\r\n\r\none", b"Content-Type: a/b\r\n\r\ntwo")
    truncated = body[: body.rindex(b"\r\n--")] + b"\r\n--b0undary\r\nContent-Type: a/b\r\n\r\nthr"
    parts = iter_multipart(truncated, BOUNDARY)
    assert bytes(next(parts).body) == b"one"
    assert bytes(next(parts).body) == b"two"
    with pytest.raises(HttpError, match="Truncated"):
        next(parts)


@pytest.mark.parametrize(
    "header",
    [
        'multipart/related; type="application/dicom"; boundary="b0undary"',
        "multipart/related; type=application/dicom; boundary=b0undary",
        "Multipart/Related;Boundary=b0undary;type=application/dicom",
    ],
)
def test_boundary_quoted_or_not(header: str) -> None:
    assert boundary_of(header) == BOUNDARY


def test_boundary_keeps_its_case_and_special_characters() -> None:
    assert boundary_of('multipart/related; boundary="A b:c=d"') == "A b:c=d"


def test_missing_boundary_is_a_bad_request() -> None:
    with pytest.raises(HttpError) as caught:
        boundary_of('multipart/related; type="application/dicom"')
    assert caught.value.status == 400


def test_big_payload_is_not_copied() -> None:
    big = bytes(range(256)) * (10 * 1024 * 1024 // 256)  # 10 MB, full of CRLF and dashes
    boundary = new_boundary()
    body = encode_multipart(
        [(big, "application/dicom", None), (b"small", "application/dicom", None)], boundary
    )
    parts = parse_multipart(body, boundary)
    assert len(parts) == 2
    for part in parts:
        assert isinstance(part.body, memoryview)
        assert part.body.obj is body
    assert parts[0].body == big
    assert len(parts[0].body) == len(big)


def test_encode_part_and_content_type() -> None:
    part = encode_part(b"xy", "application/dicom", {"Content-Location": "/x"}, boundary="B")
    assert part == b"--B\r\nContent-Type: application/dicom\r\nContent-Location: /x\r\n\r\nxy\r\n"
    assert multipart_content_type("application/dicom", "B") == (
        'multipart/related; type="application/dicom"; boundary=B'
    )
    assert multipart_content_type(
        "application/octet-stream", "a b", {"transfer-syntax": "1.2.840.10008.1.2.1"}
    ) == (
        'multipart/related; type="application/octet-stream"; '
        'transfer-syntax=1.2.840.10008.1.2.1; boundary="a b"'
    )


def test_new_boundaries_differ_and_need_no_quotes() -> None:
    first, second = new_boundary(), new_boundary()
    assert first != second
    assert boundary_of(f"multipart/related; boundary={first}") == first


def test_parts_know_where_their_payload_lies_in_the_body() -> None:
    body = raw(b"Content-Type: a/b\r\n\r\none", b"\r\ntwo", preamble=b"preamble")
    for part in parse_multipart(body, BOUNDARY):
        assert body[part.offset : part.end] == part.body


# --- Streamed parsing (a body read in chunks) ---------------------------------------------


def chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize(
    "body",
    [
        raw(b"Content-Type: a/b\r\n\r\none", b"Content-Type: a/b\r\n\r\n", b"\r\nthree"),
        raw(b"X: 1\r\n\r\nabc\r\n--b0undaryX not a delimiter\r\n--b0undary-ish", b"\r\n2"),
        b"--b0undary  \r\n\r\npadded\r\n--b0undary\t\nX-A: 1\r\n\r\nbare LF\r\n--b0undary--",
        b"--b0undary\r\nContent-Type: a/b\r\n\r\n--b0undary--",
        raw(b"\r\nx", preamble=b"preamble --b0undar", epilogue=b"\r\n--b0undary\r\nafter"),
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 2, 13, 1_000_000])
def test_streamed_parts_are_the_parts_of_the_whole_body(body: bytes, chunk_size: int) -> None:
    expected = [bytes(part.body) for part in parse_multipart(body, BOUNDARY)]
    assert list(iter_streamed_parts(chunked(body, chunk_size), BOUNDARY)) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"--b0undary\r\nContent-Type: a/b\r\n\r\ntruncated",
        b"--b0undary\r\nContent-Type: a/b no end\r\n--b0undary--",
        b"no delimiter at all",
        b"",
    ],
)
def test_streamed_parts_refuse_broken_bodies(body: bytes) -> None:
    with pytest.raises(HttpError) as caught:
        list(iter_streamed_parts(chunked(body, 5), BOUNDARY))
    assert caught.value.status == 400


def test_streamed_parts_keep_only_the_part_being_received() -> None:
    payload = b"\xaa" * 100_000
    body = raw(*[b"\r\n" + payload] * 20)
    received = []

    def chunks() -> Iterator[bytes]:
        for chunk in chunked(body, 65536):
            received.append(len(chunk))
            yield chunk

    for index, part in enumerate(iter_streamed_parts(chunks(), BOUNDARY)):
        assert part == payload
        # Yielded once the next delimiter has arrived, not at the end of the body.
        assert sum(received) < (index + 2) * len(payload) + 65536


# --- Releasing the memory of consumed parts -----------------------------------------------


def address_of(body: bytes) -> int:
    return ctypes.cast(ctypes.c_char_p(body), ctypes.c_void_p).value or 0


def resident_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise is used on Linux only")
def test_consumed_pages_of_a_big_body_go_back_to_the_os() -> None:
    size = 64 * 2**20
    body = b"\x01" * size
    kept_from = size - 5 * mmap.PAGESIZE - 123  # not on a page boundary
    before = resident_kb()
    ReleasableBody(body).release_until(kept_from)
    assert before - resident_kb() > 60 * 1024
    assert body[kept_from:] == b"\x01" * (size - kept_from)  # the rest is intact
    # The first page is only partly the body's (the object header is there): it is kept.
    first_page = -address_of(body) % mmap.PAGESIZE
    assert body[:first_page] == b"\x01" * first_page
    assert body[first_page] == 0


def test_small_bodies_are_left_alone() -> None:
    body = b"\x01" * (ReleasableBody.MINIMUM_SIZE - 1)
    ReleasableBody(body).release_until(len(body))
    assert body.count(b"\x01") == len(body)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise is used on Linux only")
def test_releasing_goes_forward_only_and_never_past_the_end() -> None:
    size = ReleasableBody.MINIMUM_SIZE
    body = b"\x02" * size
    released = ReleasableBody(body)
    released.release_until(size // 2)
    released.release_until(size // 4)  # already released: nothing happens
    released.release_until(10 * size)
    # The last page is only partly the body's: it is kept.
    last_page = (address_of(body) + size) % mmap.PAGESIZE
    assert body[size - last_page :] == b"\x02" * last_page
    assert body[size - last_page - 1] == 0
