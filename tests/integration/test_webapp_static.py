"""The web application's files, `{root}info` and the Orthanc Explorer extension, live."""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable

import pytest

from tests.harness import REPO, Orthanc

APP = "/dicom-web/app/client/"


def raw_get(orthanc: Orthanc, path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (HTTP libraries would normalize it)."""
    connection = http.client.HTTPConnection("127.0.0.1", orthanc.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_application_files_have_content_types_and_caching_headers(orthanc: Orthanc) -> None:
    expected = {
        "index.html": "text/html; charset=utf-8",
        "app.js": "text/javascript; charset=utf-8",
        "app.css": "text/css; charset=utf-8",
    }
    for name, content_type in expected.items():
        response = orthanc.get(APP + name)
        assert response.status_code == 200, name
        assert response.headers["Content-Type"] == content_type
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.content
    assert "DICOMweb client" in orthanc.get(APP + "index.html").text


def test_etag_revalidation_answers_304(orthanc: Orthanc) -> None:
    etag = orthanc.get(APP + "app.js").headers["ETag"]
    revalidated = orthanc.get(APP + "app.js", headers={"If-None-Match": etag})
    assert revalidated.status_code == 304
    assert revalidated.content == b""
    assert orthanc.get(APP + "app.js", headers={"If-None-Match": '"old"'}).status_code == 200


def test_the_folder_redirects_to_the_page(orthanc: Orthanc) -> None:
    response = orthanc.get(APP.rstrip("/"), allow_redirects=False)
    assert response.status_code in (301, 302, 307)
    assert response.headers["Location"].endswith("index.html")
    assert orthanc.get(APP.rstrip("/")).url == orthanc.url + "/dicom-web/app/client/index.html"
    assert orthanc.get(APP).url == orthanc.url + "/dicom-web/app/client/index.html"


def test_the_redirect_never_names_a_forwarded_host(orthanc: Orthanc) -> None:
    headers = {"X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example"}
    response = orthanc.get(APP.rstrip("/"), headers=headers, allow_redirects=False)
    assert "evil" not in response.headers["Location"]  # was https://evil.example/...


@pytest.mark.parametrize(
    "path",
    [
        APP + "../../../../../../etc/passwd",
        APP + "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        APP + "..%2f..%2f..%2f..%2fetc%2fpasswd",
        APP + "%2fetc%2fpasswd",
        APP + "/etc/passwd",
        APP + "..%5c..%5c..%5cetc%5cpasswd",
        APP + "missing.html",
        APP + "../../../orthanc_dicomweb/client/webapp.py",
        "/dicom-web/app/explorer.js",
    ],
)
def test_traversal_and_unknown_files_get_404(orthanc: Orthanc, path: str) -> None:
    status, body = raw_get(orthanc, path)
    assert status == 404, (path, body[:200])
    assert b"root:" not in body


def test_a_nul_byte_reaches_no_other_file(orthanc: Orthanc) -> None:
    # The core decodes the path and cuts it at the NUL: at most the application's file answers.
    status, body = raw_get(orthanc, APP + "app.js%00.png")
    assert status == 404 or (status, body) == (200, orthanc.get(APP + "app.js").content)


def test_other_methods_are_refused(orthanc: Orthanc) -> None:
    assert orthanc.post(APP + "index.html", data=b"x").status_code == 405
    assert orthanc.delete("/dicom-web/info").status_code == 405


def test_info_and_explorer_extension_follow_the_configuration(
    orthanc_factory: Callable[..., Orthanc],
) -> None:
    server = {"Url": "http://remote.invalid/dicom-web/", "Password": "hidden", "Username": "u"}
    instance = orthanc_factory(
        {"DicomWeb": {"Root": "/web/", "ServersInDatabase": True, "Servers": {"first": server}}}
    )
    info = instance.get("/web/info").json()
    assert info["DicomWebRoot"] == "/web/"
    assert info["OrthancApiRoot"] == "./../"
    assert info["DicomWebUrl"] == f"{instance.url}/web/"
    assert info["ServersInDatabase"] is True
    assert [s["Name"] for s in info["Servers"]] == ["first"]
    assert "hidden" not in instance.get("/web/info").text

    added = {"Url": "http://second.invalid/", "HasDelete": True}
    assert instance.put("/web/servers/second", json=added).status_code == 200
    servers = {s["Name"]: s for s in instance.get("/web/info").json()["Servers"]}
    assert servers["second"]["HasDelete"] is True
    assert "delete" in servers["second"]["Operations"]

    assert instance.get("/web/app/client/index.html").status_code == 200
    assert instance.get(APP + "index.html").status_code == 404
    script = instance.get("/plugins/explorer.js").text
    assert "'..' + \"/web/\"" in script
    assert "Open DICOMweb client" in script and "Send to DICOMweb server" in script


def test_explorer_extension_is_installed(orthanc: Orthanc) -> None:
    script = orthanc.get("/plugins/explorer.js").text
    assert "'..' + \"/dicom-web/\"" in script
    assert "__DICOMWEB_ROOT__" not in script


def test_the_links_run_orthanc_prints_answer_in_a_browser(orthanc: Orthanc) -> None:
    script = (REPO / "scripts" / "run-orthanc.sh").read_text()
    links = re.findall(r"(http://localhost:\$port(/[^\s\"]*))", script)
    assert any(path.startswith("/dicom-web/") for _, path in links)
    for link, path in links:
        if path == "/instances":  # the upload endpoint: POST only
            continue
        answer = orthanc.get(path, headers={"Accept": "text/html,*/*"})
        assert answer.status_code == 200, f"{link} answers {answer.status_code}"
