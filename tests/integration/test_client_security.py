"""The DICOMweb client of a live Orthanc against misbehaving remotes (issue 16): secrets of the
server definitions, redirects, paths that climb out of the server's URL, odd statuses."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import PYDICOM_FILES, Orthanc, orthanc_available
from tests.integration.test_client import closed_port_url, start, stop, wait_finished
from tests.unit.test_client import Remote, answer, redirect, send

pytestmark = pytest.mark.skipif(not orthanc_available(), reason="Orthanc needed")

SECRETS = ("s3cr3t-pw", "T0KEN-value", "K3Y-value")


@pytest.fixture(scope="module")
def remote() -> Iterator[Remote]:
    """The configured server: a local HTTP server whose answers each test chooses."""
    server = Remote()
    yield server
    server.close()


@pytest.fixture(scope="module")
def other() -> Iterator[Remote]:
    """Another origin (another port), which records what it receives."""
    server = Remote()
    server.routes["/dicom-web/studies"] = answer(200, b"{}")
    yield server
    server.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, remote: Remote) -> Iterator[Orthanc]:
    with_credentials = remote.url.replace("http://", f"http://admin:{SECRETS[0]}@")
    headers = {"Authorization": f"Bearer {SECRETS[1]}", "X-Api-Key": SECRETS[2]}
    servers = {
        "remote": {"Url": remote.url, "HttpHeaders": headers, "HasDelete": True},
        "creds": {"Url": with_credentials, "HasDelete": True},
        "creds-down": [closed_port_url().replace("http://", f"http://admin:{SECRETS[0]}@")],
    }
    config = {"DicomWeb": {"Servers": servers}, "HttpTimeout": 3}
    instance = start(tmp_path_factory.mktemp("client-security"), config)
    yield instance
    stop(instance)


@pytest.fixture
def fresh(remote: Remote, other: Remote) -> Iterator[None]:
    remote.routes.clear()
    remote.requests.clear()
    other.requests.clear()
    yield


def no_secret_in(text: str) -> bool:
    return not any(secret in text for secret in SECRETS)


# --- item 2: header values -------------------------------------------------------------------


def test_expand_shows_the_names_of_http_headers_never_their_values(client: Orthanc) -> None:
    expanded = client.get("/dicom-web/servers?expand")
    assert expanded.status_code == 200
    assert expanded.json()["remote"]["HttpHeaders"] == ["Authorization", "X-Api-Key"]
    assert expanded.json()["remote"]["HasDelete"] == "1"
    assert no_secret_in(expanded.text)
    assert expanded.json()["creds"]["Url"].startswith("http://***@127.0.0.1:")


# --- item 3: credentials in a server's URL ----------------------------------------------------


def test_credentials_in_a_url_are_never_shown(client: Orthanc, remote: Remote, fresh) -> None:
    remote.routes["/dicom-web/studies"] = answer(500, b"trouble")
    failed = client.post("/dicom-web/servers/creds/qido", json={"Uri": "studies"})
    assert failed.status_code == 502
    assert "***@" in failed.json()["Message"] and no_secret_in(failed.text)
    assert remote.requests[0]["headers"]["Authorization"].startswith("Basic ")  # still used
    remote.routes["/dicom-web/studies/1.2"] = answer(200, b"not multipart", "text/plain")
    retrieved = client.post("/dicom-web/servers/creds/wado", json={"Uri": "studies/1.2"})
    assert retrieved.status_code == 502
    assert "***@" in retrieved.json()["Message"] and no_secret_in(retrieved.text)
    down = client.post("/dicom-web/servers/creds-down/get", json={"Uri": "studies"})
    assert down.status_code == 502 and no_secret_in(down.text)
    local = client.upload([PYDICOM_FILES / "CT_small.dcm"])
    job = client.post(
        "/dicom-web/servers/creds-down/stow",
        json={"Resources": [local[0]["ID"]], "Synchronous": False},
    ).json()
    finished = wait_finished(client, job["ID"])
    assert finished["State"] == "Failure"
    assert "***@" in finished["ErrorDescription"] and no_secret_in(json.dumps(finished))
    assert no_secret_in(client.log_text())


# --- item 4: redirects ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirected_stow_fails_and_nothing_goes_to_the_other_origin(
    client: Orthanc, remote: Remote, other: Remote, fresh, status: int
) -> None:
    remote.routes["/dicom-web/studies"] = redirect(other.url + "studies", status)
    local = client.upload([PYDICOM_FILES / "MR_small.dcm"])
    pushed = client.post("/dicom-web/servers/remote/stow", json={"Resources": [local[0]["ID"]]})
    assert pushed.status_code == 502, pushed.text
    assert "redirected" in pushed.json()["Message"]
    assert other.requests == []


@pytest.mark.parametrize("operation", ["get", "qido"])
def test_proxied_calls_do_not_follow_redirects_to_another_origin(
    client: Orthanc, remote: Remote, other: Remote, fresh, operation: str
) -> None:
    remote.routes["/dicom-web/studies"] = redirect(other.url + "studies", 302)
    response = client.post(f"/dicom-web/servers/remote/{operation}", json={"Uri": "studies"})
    assert response.status_code == 502
    assert "another origin" in response.json()["Message"]
    assert other.requests == []  # neither its X-Api-Key nor anything else


def test_proxied_calls_follow_redirects_within_the_origin(
    client: Orthanc, remote: Remote, fresh
) -> None:
    remote.routes["/dicom-web/old/studies"] = redirect("/dicom-web/studies", 301)
    remote.routes["/dicom-web/studies"] = answer(200, b"[]", "application/dicom+json")
    response = client.post("/dicom-web/servers/remote/qido", json={"Uri": "old/studies"})
    assert response.status_code == 200 and response.json() == []
    assert remote.requests[-1]["headers"]["X-Api-Key"] == SECRETS[2]


def test_a_redirected_retrieve_fails(client: Orthanc, remote: Remote, fresh) -> None:
    remote.routes["/dicom-web/studies/1.2"] = redirect("/dicom-web/studies/1.3", 302)
    response = client.post(
        "/dicom-web/servers/remote/retrieve", json={"Resources": [{"Study": "1.2"}]}
    )
    assert response.status_code == 502
    assert "redirected" in response.json()["Message"]
    assert [r["path"] for r in remote.requests if "1.3" in r["path"]] == []


# --- item 5: paths that climb out of the server's URL -----------------------------------------


@pytest.mark.parametrize(
    "uri", ["%2e%2e/%2e%2e/system", "studies/%2E%2E/%2e%2e/%2e%2e/system", "%252e%252e/system"]
)
def test_encoded_dot_segments_are_refused(client: Orthanc, remote: Remote, fresh, uri) -> None:
    remote.routes["/system"] = answer(200, b'{"secret": true}')
    response = client.post("/dicom-web/servers/remote/get", json={"Uri": uri})
    assert response.status_code == 400
    assert remote.requests == []


# --- item 6: statuses the core cannot send ----------------------------------------------------


@pytest.mark.parametrize("status", [418, 429, 431, 451, 499, 405])
@pytest.mark.parametrize("operation", ["get", "qido", "delete"])
def test_every_remote_status_gets_an_answer(
    client: Orthanc, remote: Remote, fresh, status: int, operation: str
) -> None:
    remote.routes["/dicom-web/studies/1.2"] = lambda h: send(h, status, b"slow down")
    body = {"Uri": "studies/1.2"}
    response = client.post(f"/dicom-web/servers/remote/{operation}", json=body)
    assert response.status_code == 502, response.text
    details = response.json()["Details"]
    assert details == {"RemoteStatus": status, "RemoteAnswer": "slow down"}


def test_remote_4xx_the_core_can_send_are_passed_on(client: Orthanc, remote: Remote, fresh) -> None:
    remote.routes["/dicom-web/studies/1.2"] = answer(404, b"{}")
    response = client.post("/dicom-web/servers/remote/get", json={"Uri": "studies/1.2"})
    assert response.status_code == 404


# --- issue 15: a database first used by the official plugin ---------------------------------


def test_servers_saved_by_the_official_plugin_are_adopted(tmp_path: Path) -> None:
    workdir = tmp_path / "site"
    settings: dict[str, Any] = {"DicomWeb": {"ServersInDatabase": True}}
    official = Orthanc(workdir, settings, official=True).start()
    try:
        definition = {
            "Url": "http://pacs.example/dw/",
            "Username": "bob",
            "Password": "pw",
            "HttpHeaders": {"X-Api-Key": "k"},
            "HasDelete": True,
            "Timeout": 7,
        }
        assert official.put("/dicom-web/servers/pacs", json=definition).ok
    finally:
        official.stop()
    index = workdir / "storage" / "index"
    saved = dict(sqlite3.connect(index).execute("SELECT property, value FROM GlobalProperties"))
    ours = start(workdir, settings)
    try:
        expanded = ours.get("/dicom-web/servers?expand").json()
        assert list(expanded) == ["pacs"], (expanded, ours.log_tail())
        assert expanded["pacs"]["HttpHeaders"] == ["X-Api-Key"]
        assert expanded["pacs"]["HasDelete"] == "1" and expanded["pacs"]["Timeout"] == 7
        assert "delete" in ours.get("/dicom-web/servers/pacs").json()
        assert ours.put("/dicom-web/servers/more", json=["http://more/"]).ok
        assert ours.get("/dicom-web/servers").json() == ["more", "pacs"]
    finally:
        stop(ours)
    after = dict(sqlite3.connect(index).execute("SELECT property, value FROM GlobalProperties"))
    assert after[5468] == saved[5468]  # the official plugin's copy is left as it was
    again = Orthanc(workdir, settings, official=True).start()
    try:
        assert again.get("/dicom-web/servers").json() == ["pacs"]
    finally:
        again.stop()
