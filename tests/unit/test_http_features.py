"""Pure logic of CORS, ETags, the `accept` parameter, ZIP negotiation and capabilities."""

from __future__ import annotations

import io
import re
import zipfile

import pydicom
import pytest
from pydicom.uid import generate_uid

from orthanc_dicomweb.config import ConfigurationError, parse_configuration
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.caching import parse_if_none_match, weakly_matches
from orthanc_dicomweb.http.cors import CorsOptions, CorsPolicy, is_preflight
from orthanc_dicomweb.http.layer import accept_from_query, buffered, merge_headers
from orthanc_dicomweb.http.multipart import boundary_of, parse_multipart
from orthanc_dicomweb.http.web import MultipartResponse, Request
from orthanc_dicomweb.services.capabilities import kind_of, template
from orthanc_dicomweb.services.zip_retrieve import as_multipart_accept, write_zip, zip_range

ORIGIN = "https://viewer.example.org"


def cors(**options: object) -> CorsPolicy:
    return CorsPolicy(CorsOptions(allowed_origins=(ORIGIN,), **options))  # type: ignore[arg-type]


# --- CORS --------------------------------------------------------------------------------------


def test_cors_is_off_without_origins() -> None:
    policy = CorsPolicy(CorsOptions())
    assert policy.headers(Request("GET", "/", headers={"origin": ORIGIN})) == {}


def test_cors_headers_for_allowed_and_refused_origins() -> None:
    policy = cors(allow_credentials=True)
    allowed = policy.headers(Request("GET", "/", headers={"origin": ORIGIN}))
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert allowed["Access-Control-Allow-Credentials"] == "true"
    assert allowed["Vary"] == "Origin"
    refused = policy.headers(Request("GET", "/", headers={"origin": "https://evil.example"}))
    assert refused == {"Vary": "Origin"}


def test_wildcard_origin() -> None:
    policy = CorsPolicy(CorsOptions(allowed_origins=("*",)))
    headers = policy.headers(Request("GET", "/", headers={"origin": "http://any:1"}))
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in headers


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"allowed_origins": ("*",), "allow_credentials": True}, "AllowCredentials"),
        ({"allowed_origins": ("viewer.example.org",)}, "no origin"),
        ({"allowed_origins": (ORIGIN,), "allowed_methods": ("GET", "PATCH")}, "PATCH"),
        ({"allowed_origins": (ORIGIN,), "allowed_headers": ("Bad Header",)}, "header names"),
    ],
)
def test_cors_options_that_cannot_work_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CorsOptions(**options)


def preflight(method: str, origin: str = ORIGIN, headers: str = "") -> Request:
    asked = {"origin": origin, "access-control-request-method": method}
    if headers:
        asked["access-control-request-headers"] = headers
    return Request("OPTIONS", "/dicom-web/studies", headers=asked)


def test_preflight_answers() -> None:
    policy = cors(max_age=60)
    answer = policy.preflight(preflight("POST", headers="Content-Type, accept"), {"GET", "POST"})
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert answer.headers["Access-Control-Max-Age"] == "60"
    for request, status in (
        (preflight("PUT"), 405),  # not served on this route
        (preflight("FOO BAR"), 400),  # no method token
        (preflight(""), 400),
        (preflight("GET", origin="https://evil.example"), 403),
        (preflight("GET", headers="x-secret"), 403),
    ):
        with pytest.raises(HttpError) as error:
            policy.preflight(request, {"GET", "POST"})
        assert error.value.status == status


def test_preflights_as_sent_and_as_passed_on_by_a_proxy() -> None:
    assert is_preflight(preflight("GET"))
    assert not is_preflight(Request("OPTIONS", "/"))
    assert is_preflight(Request("GET", "/", headers={"x-cors-preflight": "1"}))
    assert not is_preflight(Request("POST", "/", headers={"x-cors-preflight": "1"}))


def test_cors_configuration() -> None:
    config = parse_configuration({"DicomWeb": {"Cors": {"AllowedOrigins": [ORIGIN]}}})
    assert config.cors.allowed_origins == (ORIGIN,)
    assert config.cors.allowed_methods == ("GET", "POST", "DELETE")
    assert not parse_configuration({}).cors.enabled
    with pytest.raises(ConfigurationError, match=r"DicomWeb\.Cors"):
        parse_configuration(
            {"DicomWeb": {"Cors": {"AllowedOrigins": ["*"], "AllowCredentials": True}}}
        )
    with pytest.raises(ConfigurationError, match=r"DicomWeb\.Cors\.MaxAge"):
        parse_configuration({"DicomWeb": {"Cors": {"MaxAge": "1"}}})


def test_delete_and_cache_options_default_to_off() -> None:
    config = parse_configuration({})
    assert not config.enable_delete and config.cache_max_age == 0


# --- ETags -------------------------------------------------------------------------------------


def test_if_none_match_parsing() -> None:
    assert parse_if_none_match(None) is None
    assert parse_if_none_match(" * ") == ["*"]
    assert parse_if_none_match('"a", W/"b"') == ['"a"', 'W/"b"']
    for malformed in ("a", '"a', "W/a", '"a" "b"', '"a",', 'w/"a"'):
        with pytest.raises(HttpError) as error:
            parse_if_none_match(malformed)
        assert error.value.status == 400


def test_weak_comparison() -> None:
    assert weakly_matches(['W/"x"'], '"x"')
    assert weakly_matches(['"x"'], 'W/"x"')
    assert weakly_matches(["*"], '"y"')
    assert not weakly_matches(['"x"'], '"y"')


# --- the accept parameter, buffering, headers ---------------------------------------------------


def test_accept_parameter_moves_into_the_header() -> None:
    request = Request(
        "GET",
        "/x",
        query={"accept": "application/dicom+json", "limit": "1"},
        headers={"accept": "text/html"},
    )
    moved = accept_from_query(request)
    assert moved.header("accept") == "application/dicom+json"
    assert moved.query == {"limit": "1"}
    assert accept_from_query(Request("GET", "/x")) == Request("GET", "/x")
    for bad in ("", "nonsense", "a/b/c"):
        with pytest.raises(HttpError) as error:
            accept_from_query(Request("GET", "/x", query={"accept": bad}))
        assert error.value.status == 400


def test_buffered_multipart_keeps_headers_and_part_lengths() -> None:
    answer = buffered(
        MultipartResponse(
            "application/octet-stream", iter([b"ab", b"cde"]), headers={"ETag": '"1"'}
        )
    )
    assert answer.headers == {"ETag": '"1"'}
    assert answer.content_type.startswith('multipart/related; type="application/octet-stream"')
    body = bytes(answer.body)  # type: ignore[arg-type]
    assert b"Content-Length: 2\r\n" in body
    parts = parse_multipart(body, boundary_of(answer.content_type))
    assert [bytes(p.body) for p in parts] == [b"ab", b"cde"]


def test_vary_values_are_joined() -> None:
    assert merge_headers({"Vary": "Accept", "A": "1"}, {"Vary": "Origin", "B": "2"}) == {
        "Vary": "Accept, Origin",
        "A": "1",
        "B": "2",
    }


# --- ZIP ---------------------------------------------------------------------------------------


def test_zip_negotiation() -> None:
    assert zip_range("application/zip") is not None
    assert zip_range("*/*") is None
    assert zip_range("multipart/related; type=application/dicom, application/zip; q=0.5") is None
    assert zip_range("application/zip; q=0, multipart/related") is None
    media = zip_range("application/zip; transfer-syntax=1.2.840.10008.1.2")
    assert media is not None
    assert as_multipart_accept(media).endswith("transfer-syntax=1.2.840.10008.1.2")


def test_write_zip_names_entries_by_uids() -> None:
    dataset = pydicom.Dataset()
    dataset.SeriesInstanceUID, dataset.SOPInstanceUID = generate_uid(), generate_uid()
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    archive = zipfile.ZipFile(io.BytesIO(write_zip([out.getvalue()])))
    assert archive.namelist() == [f"{dataset.SeriesInstanceUID}/{dataset.SOPInstanceUID}.dcm"]


# --- capabilities -----------------------------------------------------------------------------


def test_route_patterns_become_wadl_paths() -> None:
    root = "^" + re.escape("/dicom-web/")
    assert template(root + "studies/([^/]+)/series/([^/]+)/metadata$", root) == (
        "studies/{study}/series/{series}/metadata"
    )
    assert template(root + "servers/?$", root) == "servers"
    assert template(root + "app/client(?:/(.*))?$", root) == "app/client/{path}"
    assert template("^/wado$", root) is None
    assert kind_of("studies") == "search"
    assert kind_of("studies/{study}") == "retrieve"
    assert kind_of("studies/{study}/series/{series}/instances/{instance}") == "instance"
    assert (
        kind_of("studies/{study}/series/{series}/instances/{instance}/frames/{frames}") == "frames"
    )
