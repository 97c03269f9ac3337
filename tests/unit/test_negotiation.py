from __future__ import annotations

import pytest

from orthanc_dicomweb.http.negotiation import (
    ACCEPT_REFUSED,
    MediaType,
    choose,
    dicom_model_format,
    matches,
    metadata_format,
    multipart_type,
    parse_accept,
    parse_media_type,
    transfer_syntax,
)
from tests.unit.fakes import http_error


def test_parse_media_type_with_quoted_type_and_wildcard_syntax() -> None:
    media = parse_media_type(
        'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    )
    assert media.essence == "multipart/related"
    assert media.param("type") == "application/octet-stream"
    assert transfer_syntax(media) == "*"
    assert media.q == 1.0


def test_parse_media_type_unquoted_type_without_spaces() -> None:
    media = parse_media_type(
        "multipart/related;type=application/dicom;transfer-syntax=1.2.840.10008.1.2.1"
    )
    assert multipart_type(media) == "application/dicom"
    assert transfer_syntax(media) == "1.2.840.10008.1.2.1"


def test_parse_media_type_is_case_insensitive_and_tolerates_spaces() -> None:
    media = parse_media_type('  Multipart/Related ;  TYPE = "Application/DICOM" ;Q=0.3 ')
    assert media.essence == "multipart/related"
    assert multipart_type(media) == "application/dicom"
    assert media.q == pytest.approx(0.3)
    assert "q" not in media.params


def test_quoted_strings_keep_commas_semicolons_and_escapes() -> None:
    media = parse_media_type(r'text/plain; note="a, b; c \"d\""')
    assert media.param("note") == 'a, b; c "d"'


@pytest.mark.parametrize(
    "text", ["", "application", "/json", "application/", "a/b; =x", "a/b; q=2", "a/b; q=x"]
)
def test_garbage_is_a_bad_request(text: str) -> None:
    assert http_error(parse_media_type, text).status == 400


def test_parse_accept_orders_by_quality_stably() -> None:
    ranges = parse_accept(
        'application/dicom+json, multipart/related; type="application/dicom+xml"; q=0.5, '
        "application/json;q=0.5, */*;q=0.1"
    )
    assert [media.essence for media in ranges] == [
        "application/dicom+json",
        "multipart/related",
        "application/json",
        "*/*",
    ]
    assert multipart_type(ranges[1]) == "application/dicom+xml"


def test_parse_accept_splits_only_outside_quotes() -> None:
    ranges = parse_accept('multipart/related; type="application/dicom"; x="1,2", image/png')
    assert len(ranges) == 2
    assert ranges[0].param("x") == "1,2"


def test_parse_accept_skips_items_that_are_no_media_range() -> None:
    ranges = parse_accept("toto, application/dicom+json, a/b; q=high")
    assert [media.essence for media in ranges] == ["application/dicom+json"]
    assert parse_accept("toto, tata") == []  # nothing acceptable, unlike no header at all


def test_multipart_type_keeps_spaces_inside_quotes() -> None:
    assert multipart_type(parse_media_type('multipart/related; type = "  a/b" ')) == "  a/b"
    assert multipart_type(parse_media_type('multipart/related;  type =  "A/B"  ')) == "a/b"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/dicom+json"),
        ("application/json, tata", "application/json"),
        ("application/dicom+xml, application/json", "application/json"),
        ("multipart/related; type=application/dicom+xml", "application/dicom+xml"),
        ("application/dicom+xml", "application/dicom+xml"),
    ],
)
def test_metadata_format(accept: str | None, chosen: str) -> None:
    assert metadata_format(accept) == chosen


@pytest.mark.parametrize(
    "accept",
    [
        "application/nope",
        "multipart/related",
        'multipart/related; type="application/nope"',
        "multipart/related; type=application/dicom+xml; transfer-syntax=nope",
        "toto",
    ],
)
def test_metadata_format_refuses_with_400_as_the_official_plugin(accept: str) -> None:
    assert http_error(metadata_format, accept).status == ACCEPT_REFUSED == 400


@pytest.mark.parametrize("header", [None, "", "   ", " , "])
def test_missing_accept_means_anything(header: str | None) -> None:
    assert parse_accept(header) == [MediaType("*", "*")]


def test_matches_wildcards() -> None:
    assert matches(MediaType("*", "*"), "application/dicom")
    assert matches(MediaType("image", "*"), "image/png")
    assert not matches(MediaType("image", "*"), "application/json")
    assert matches(MediaType("image", "png"), "IMAGE/PNG")
    assert not matches(MediaType("image", "png"), "image/jpeg")


def test_choose_prefers_quality_then_order_of_offers() -> None:
    offers = ["application/dicom+json", "application/json", "multipart/related"]
    assert choose(parse_accept("application/json, application/dicom+json"), offers) == (
        "application/dicom+json"
    )
    assert choose(parse_accept("application/json, */*;q=0.2"), offers) == "application/json"
    assert choose(parse_accept(None), offers) == "application/dicom+json"


def test_choose_uses_the_most_specific_range_and_q0_refuses() -> None:
    offers = ["application/dicom+json", "application/json"]
    accepted = parse_accept("*/*, application/dicom+json;q=0")
    assert choose(accepted, offers) == "application/json"


def test_choose_raises_406_listing_the_offers() -> None:
    error = http_error(
        choose, parse_accept("image/png"), ["application/dicom+json", "application/json"]
    )
    assert error.status == 406
    assert "application/dicom+json" in error.message
    assert "application/json" in error.message


def test_multipart_helpers_on_other_types() -> None:
    assert multipart_type(parse_media_type("application/dicom")) is None
    assert multipart_type(parse_media_type("multipart/related")) is None
    assert transfer_syntax(parse_media_type("application/dicom")) is None


def test_media_type_is_hashable_and_printable() -> None:
    media = parse_media_type('multipart/related; type="application/dicom"; q=0.5')
    assert hash(media) == hash(
        parse_media_type('multipart/related; type="application/dicom"; q=0.5')
    )
    assert str(media) == 'multipart/related; type="application/dicom"; q=0.5'


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/dicom+json"),
        ("*/*", "application/dicom+json"),
        ("application/json", "application/json"),
        ("application/dicom+xml", "application/dicom+xml"),
        ("multipart/related", "application/dicom+xml"),
        ('multipart/related; type="application/dicom+xml"', "application/dicom+xml"),
        (
            'multipart/related; type="application/dicom+xml", application/json; q=0.5',
            "application/dicom+xml",
        ),
        ("application/dicom+xml; q=0.4, application/dicom+json", "application/dicom+json"),
        ("application/dicom+xml, application/dicom+json", "application/dicom+json"),
    ],
)
def test_dicom_model_format(accept: str | None, chosen: str) -> None:
    assert dicom_model_format(accept, "Metadata") == chosen


@pytest.mark.parametrize(
    "accept", ["image/png", 'multipart/related; type="application/dicom"', "text/xml"]
)
def test_dicom_model_format_refuses_other_types_with_406(accept: str) -> None:
    error = http_error(dicom_model_format, accept, "Metadata")
    assert error.status == 406
    assert error.message.startswith("Metadata is available as application/dicom+json")
