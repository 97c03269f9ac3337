"""Retrieve Bulkdata: paths, negotiation and byte ranges (no Orthanc)."""

from __future__ import annotations

import pytest

from orthanc_dicomweb.services.bulkdata import (
    ByteRange,
    parse_bulk_path,
    parse_range,
    wants_single_part,
)
from tests.unit.fakes import http_error


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("7FE00010", (0x7FE00010,)),
        ("7fe00010", (0x7FE00010,)),
        # Items are counted from 1 in URIs, as the official plugin writes its BulkDataURIs.
        ("00540016/1/00181072", (0x00540016, 0, 0x00181072)),
        ("00540016/12/00181072/", (0x00540016, 11, 0x00181072)),
        ("0054,0016/2/0018,1072", (0x00540016, 1, 0x00181072)),  # Orthanc's suite asks these
        ("0010,0010", (0x00100010,)),
    ],
)
def test_bulk_paths_alternate_tags_and_items(text: str, path: tuple[int, ...]) -> None:
    assert parse_bulk_path(text) == path


@pytest.mark.parametrize(
    "text",
    [
        "",
        "7FE0001",
        "7FE00010/1",
        "00540016/x/00181072",
        "0054;0016",
        "00540016/-1/00181072",
        "00540016/0/00181072",
    ],
)
def test_malformed_bulk_paths_are_400(text: str) -> None:
    assert http_error(parse_bulk_path, text).status == 400


@pytest.mark.parametrize(
    ("accept", "single"),
    [
        (None, False),
        ("*/*", False),
        ('multipart/related; type="application/octet-stream"', False),
        ('multipart/related; type="*/*"', False),
        ('multipart/related;   type =  "application/octet-stream"  ', False),
        ("toto, multipart/related", False),  # an item that is no media type is skipped
        ("application/octet-stream", True),
        ("image/jpeg;q=0.9, application/octet-stream;q=0.5", True),
    ],
)
def test_multipart_unless_a_single_octet_stream_is_asked(accept: str | None, single: bool) -> None:
    assert wants_single_part(accept) is single


@pytest.mark.parametrize(
    "accept",
    [
        "image/jpeg",
        'multipart/related; type="image/jpeg"',
        "multipart/nope",
        'multipart/related; type="  application/octet-stream"',  # not a media type
        "multipart/related; range=",  # the HTTP Range header asks parts
        "multipart/related; type=application/octet-stream; range=0-9",
    ],
)
def test_other_media_types_are_400_as_in_the_official_plugin(accept: str) -> None:
    assert http_error(wants_single_part, accept).status == 400


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 9, 100)),
        ("bytes=90-", ByteRange(90, 99, 100)),
        ("bytes=90-1000", ByteRange(90, 99, 100)),
        ("bytes=-10", ByteRange(90, 99, 100)),
        ("bytes=-1000", ByteRange(0, 99, 100)),
        ("bytes=0-1,5-6", None),  # several ranges: ignored
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=5-2", None),  # invalid: ignored
    ],
)
def test_ranges(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_unsatisfiable_ranges_are_416_with_the_size(header: str) -> None:
    error = http_error(parse_range, header, 100)
    assert error.status == 416
    assert error.headers["Content-Range"] == "bytes */100"


def test_content_range_header() -> None:
    assert ByteRange(2, 5, 10).content_range == "bytes 2-5/10"
