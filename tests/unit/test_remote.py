"""HTTP to one remote server (no Orthanc): origins, redaction, redirects and statuses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orthanc_dicomweb.client.remote import RemoteServer, origin
from orthanc_dicomweb.config import Configuration, parse_server, redact_url
from orthanc_dicomweb.errors import HttpError
from tests.unit.test_client import Remote, answer, redirect


@pytest.fixture
def remote() -> Iterator[Remote]:
    server = Remote()
    yield server
    server.close()


def connect(url: str) -> RemoteServer:
    return RemoteServer(Configuration(http_timeout=5), parse_server("far", [url]))


def test_origins() -> None:
    assert origin("http://Host/a") == origin("http://host:80/b") == ("http", "host", 80)
    assert origin("https://host/") != origin("http://host:443/")
    assert origin("http://user:pw@host:8042/") == ("http", "host", 8042)


def test_credentials_are_redacted() -> None:
    assert redact_url("http://admin:se%40cret@host/dw/") == "http://***@host/dw/"
    assert redact_url("https://host/dw/") == "https://host/dw/"
    server = connect("http://admin:se%40cret@host/dw/")
    assert server.shown("GET http://admin:se%40cret@host/dw/x") == "GET http://***@host/dw/x"
    assert server.shown("auth admin:se@cret@host") == "auth ***@host"


def test_a_get_follows_relative_redirects_within_the_origin(remote: Remote) -> None:
    remote.routes["/dicom-web/a"] = redirect("b")
    remote.routes["/dicom-web/b"] = redirect("/dicom-web/c", 307)
    remote.routes["/dicom-web/c"] = answer(200, b"found")
    with connect(remote.url) as server:
        response = server.request("GET", "a", params={"x": "1"}, follow_redirects=True)
        assert response.content == b"found"
        with pytest.raises(HttpError) as refused:
            server.request("GET", "a")  # a retrieve does not follow
        assert refused.value.status == 502


def test_redirect_loops_end(remote: Remote) -> None:
    remote.routes["/dicom-web/a"] = redirect("a")
    with connect(remote.url) as server, pytest.raises(HttpError) as raised:
        server.request("GET", "a", follow_redirects=True)
    assert "more than 5 redirects" in raised.value.message


@pytest.mark.parametrize(
    ("remote_status", "status"),
    [
        (404, 404),
        (401, 401),
        (409, 409),
        (405, 502),
        (429, 502),
        (499, 502),
        (503, 502),
        (304, 502),
    ],
)
def test_remote_statuses_become_statuses_the_core_can_send(
    remote: Remote, remote_status: int, status: int
) -> None:
    remote.routes["/dicom-web/x"] = answer(remote_status, b"")
    with connect(remote.url) as server, pytest.raises(HttpError) as raised:
        server.request("GET", "x")
    assert raised.value.status == status
    assert raised.value.details["RemoteStatus"] == remote_status
