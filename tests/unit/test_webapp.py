"""The web application's static files, `{root}info` and Orthanc Explorer's script."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orthanc_dicomweb import __version__
from orthanc_dicomweb.client.servers import ServerRegistry
from orthanc_dicomweb.client.webapp import (
    CLIENT_DIRECTORY,
    WebApplication,
    etag_matches,
    explorer_script,
    is_safe_relative_path,
    orthanc_api_root,
)
from orthanc_dicomweb.config import Configuration, ServerDefinition, normalize_root
from orthanc_dicomweb.http.web import Redirect, Request, Response, handle
from tests.unit.fakes import FakeCore

SERVERS = (
    ServerDefinition("remote", "http://remote/dicom-web/", "user", "secret", has_delete=True),
    ServerDefinition("other", "http://other/"),
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    client = tmp_path / "client"
    (client / "img").mkdir(parents=True)
    (client / "index.html").write_text("<!doctype html><title>x</title>")
    (client / "app.js").write_text("'use strict';")
    (client / "img" / "logo.svg").write_text("<svg/>")
    (client / "notes.py").write_text("print('never served')")
    (tmp_path / "secret.txt").write_text("outside the application")
    return client


def webapp(directory: Path = CLIENT_DIRECTORY, **options: object) -> WebApplication:
    config = Configuration(servers=SERVERS, **options)  # type: ignore[arg-type]
    return WebApplication(config, ServerRegistry(config, FakeCore()), directory)


def get_file(app: WebApplication, name: str, headers: dict[str, str] | None = None) -> Response:
    request = Request(
        "GET",
        f"/dicom-web/app/client/{name}",
        (name,),
        headers={"host": "h:8042", **(headers or {})},
    )
    answer = handle({"GET": app.static_file}, request)
    assert isinstance(answer, Response)
    return answer


def test_files_are_served_with_their_content_type_and_caching_headers(app_dir: Path) -> None:
    app = webapp(app_dir)
    page = get_file(app, "index.html")
    assert page.status == 200
    assert page.body == b"<!doctype html><title>x</title>"
    assert page.content_type == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    assert page.headers["ETag"].startswith('"')
    assert get_file(app, "app.js").content_type == "text/javascript; charset=utf-8"
    assert get_file(app, "img/logo.svg").content_type == "image/svg+xml"


def test_matching_etag_gives_304_without_body(app_dir: Path) -> None:
    app = webapp(app_dir)
    etag = get_file(app, "app.js").headers["ETag"]
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        answer = get_file(app, "app.js", {"if-none-match": value})
        assert (answer.status, answer.body) == (304, b"")
    assert get_file(app, "app.js", {"if-none-match": '"stale"'}).status == 200


@pytest.mark.parametrize(
    "name",
    [
        "../secret.txt",
        "..",
        "img/../index.html",
        "./index.html",
        "%2e%2e/secret.txt",
        "..%2fsecret.txt",
        "img%2flogo.svg",
        "/etc/passwd",
        "//etc/passwd",
        "img\\logo.svg",
        "index.html\x00.js",
        "notes.py",
        "missing.js",
        "img/",
        "img",
        "INDEX.HTML",
    ],
)
def test_anything_but_an_application_file_is_404(app_dir: Path, name: str) -> None:
    answer = get_file(webapp(app_dir), name)
    assert answer.status == 404
    assert "No such file" in json.loads(answer.body)["Message"]


def test_empty_name_redirects_to_the_page(app_dir: Path) -> None:
    request = Request("GET", "/dicom-web/app/client", ("",), headers={"host": "h:8042"})
    assert webapp(app_dir).static_file(request) == Redirect("/dicom-web/app/client/index.html")


def test_the_redirect_ignores_forwarded_hosts(app_dir: Path) -> None:
    headers = {"x-forwarded-host": "evil.example", "forwarded": "host=evil.example"}
    request = Request("GET", "/dicom-web/app/client", ("",), headers=headers)
    assert "evil" not in webapp(app_dir).static_file(request).location


@pytest.mark.parametrize(
    ("public_root", "location"),
    [
        ("/pacs/dicom-web/", "/pacs/dicom-web/app/client/index.html"),
        ("https://pacs.example/web", "https://pacs.example/web/app/client/index.html"),
    ],
)
def test_the_redirect_follows_public_root(app_dir: Path, public_root: str, location: str) -> None:
    app = webapp(app_dir, public_root=normalize_root(public_root))
    request = Request("GET", "/dicom-web/app/client", ("",), headers={"x-forwarded-host": "e"})
    assert app.static_file(request) == Redirect(location)


def test_safe_relative_paths() -> None:
    assert is_safe_relative_path("index.html")
    assert is_safe_relative_path("vendor/lib-1.2.min.js")
    for unsafe in ("", "..", "a/..", "a//b", "/a", ".env", "a b", "a%2fb", "a\\b"):
        assert not is_safe_relative_path(unsafe)


def test_etag_matching() -> None:
    assert etag_matches('"a", "b"', '"b"')
    assert not etag_matches(None, '"b"')
    assert not etag_matches('"ab"', '"b"')


def test_the_packaged_application_is_complete() -> None:
    files = webapp().files
    assert {"index.html", "app.js", "app.css"} <= set(files)
    page = files["index.html"].body.decode()
    # Everything the page loads is shipped: no CDN, no absolute URL.
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_info_describes_roots_version_and_servers_without_secrets() -> None:
    request = Request("GET", "/dicom-web/info", headers={"host": "h:8042"})
    info = json.loads(webapp().info(request).body)
    assert info["DicomWebRoot"] == "/dicom-web/"
    assert info["OrthancApiRoot"] == "./../"
    assert info["DicomWebUrl"] == "http://h:8042/dicom-web/"
    assert info["Version"] == __version__
    assert info["ServersInDatabase"] is False
    assert info["ReadOnly"] is False
    assert [s["Name"] for s in info["Servers"]] == ["other", "remote"]
    remote = info["Servers"][1]
    assert remote["HasDelete"] is True
    assert "delete" in remote["Operations"]
    assert "delete" not in info["Servers"][0]["Operations"]
    assert "secret" not in json.dumps(info)
    assert (remote["Username"], remote["HasPassword"]) == ("user", True)


def test_info_follows_the_configuration() -> None:
    info = webapp(servers_in_database=True, read_only=True, root="/a/b/").describe(
        Request("GET", "/a/b/info")
    )
    assert info["ServersInDatabase"] is True
    assert info["ReadOnly"] is True
    assert info["OrthancApiRoot"] == "./../../"


@pytest.mark.parametrize(
    ("root", "expected"), [("/", "./"), ("/dicom-web/", "./../"), ("/a/b/c/", "./../../../")]
)
def test_orthanc_api_root_is_relative_to_the_dicomweb_root(root: str, expected: str) -> None:
    assert orthanc_api_root(Configuration(root=root)) == expected


def test_explorer_script_points_at_the_configured_root() -> None:
    script = explorer_script(Configuration(root="/my-web/"))
    assert "__DICOMWEB_ROOT__" not in script
    assert "'..' + \"/my-web/\"" in script
    assert "Send to DICOMweb server" in script
    assert "Open DICOMweb client" in script
