"""RetrieveURL / BulkDataURI bases from PublicRoot and the forwarding headers."""

from __future__ import annotations

import pytest

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.http.urls import dicomweb_base, instance_url, series_url, study_url
from orthanc_dicomweb.http.web import Request


def base(headers: dict[str, str], **config: object) -> str:
    return dicomweb_base(Configuration(**config), Request("GET", "/", headers=headers))


def test_host_header() -> None:
    assert base({"host": "pacs:8042"}) == "http://pacs:8042/dicom-web/"


def test_ssl_option_gives_https() -> None:
    assert base({"host": "pacs"}, ssl=True) == "https://pacs/dicom-web/"


def test_forwarded_header_wins() -> None:
    headers = {"host": "inner:8042", "forwarded": 'for=1.2.3.4;proto=https;host="outer.org"'}
    assert base(headers) == "https://outer.org/dicom-web/"


def test_x_forwarded_headers() -> None:
    headers = {"host": "inner", "x-forwarded-host": "outer, proxy2", "x-forwarded-proto": "https"}
    assert base(headers) == "https://outer/dicom-web/"


@pytest.mark.parametrize(
    ("public_root", "expected"),
    [
        ("https://example.org/pacs/dicom-web/", "https://example.org/pacs/dicom-web/"),
        ("/pacs/dicom-web/", "http://inner/pacs/dicom-web/"),
    ],
)
def test_public_root(public_root: str, expected: str) -> None:
    assert base({"host": "inner"}, public_root=public_root) == expected


def test_deprecated_host_option() -> None:
    assert base({}, host="fixed") == "http://fixed/dicom-web/"


def test_resource_urls() -> None:
    root = "http://h/dicom-web/"
    assert study_url(root, "1.2") == "http://h/dicom-web/studies/1.2"
    assert series_url(root, "1.2", "3") == "http://h/dicom-web/studies/1.2/series/3"
    assert instance_url(root, "1", "2", "3") == "http://h/dicom-web/studies/1/series/2/instances/3"
