"""The client API the web application stands on, live, against the official plugin 1.7: QIDO-RS
wildcards through the proxy, server editing that keeps secrets, bad server entries, retrieve
jobs that count instances, and a start-up without error lines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from tests.harness import Orthanc, orthanc_available
from tests.integration.test_webapp_browser import make_study

pytestmark = [
    pytest.mark.official,
    pytest.mark.skipif(not orthanc_available(official=True), reason="no official plugin"),
]
USER = ("alice", "secret")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """The official plugin behind a password."""
    overrides = {"AuthenticationEnabled": True, "RegisteredUsers": {USER[0]: USER[1]}}
    instance = Orthanc(tmp_path_factory.mktemp("official"), overrides, official=True)
    instance.session.auth = USER
    yield instance.start()
    instance.stop()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, guarded: Orthanc) -> Iterator[Orthanc]:
    server = {"Url": guarded.url + "/dicom-web/", "Username": USER[0], "Password": USER[1]}
    overrides = {"DicomWeb": {"ServersInDatabase": True, "Servers": {"official": server}}}
    instance = Orthanc(tmp_path_factory.mktemp("client"), overrides).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def studies(guarded: Orthanc, test_files: dict[str, Path]) -> dict[str, Any]:
    tag = generate_uid()[-6:]
    return {
        "tag": tag,
        "smith": make_study(guarded, test_files["ct"], f"SMITH-{tag}", count=3),
        "jones": make_study(guarded, test_files["mr"], f"JONES-{tag}"),
    }


def qido(client: Orthanc, server: str, arguments: dict[str, str]) -> list[dict[str, Any]]:
    body = {"Uri": "/studies", "Arguments": arguments}
    response = client.post(f"/dicom-web/servers/{server}/qido", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def uids(found: list[dict[str, Any]]) -> set[str]:
    return {study["0020000D"]["Value"][0] for study in found}


def test_wildcard_name_and_description_searches_reach_the_official_plugin(
    client: Orthanc, studies: dict[str, Any]
) -> None:
    tag, smith = studies["tag"], studies["smith"]["Study"]
    assert uids(qido(client, "official", {"PatientName": f"*MITH*{tag}*"})) == {smith}
    assert uids(qido(client, "official", {"PatientName": f"smith?{tag}"})) == {smith}
    described = {"StudyDescription": f"*of?SMITH-{tag}", "includefield": "00081030"}
    assert uids(qido(client, "official", described)) == {smith}
    both = uids(qido(client, "official", {"PatientID": f"*-{tag}"}))
    assert both == {smith, studies["jones"]["Study"]}
    # The proxied GET sends its Arguments the same way.
    body = {"Uri": "/studies", "Arguments": {"PatientName": f"JON*{tag}"}}
    answer = client.post("/dicom-web/servers/official/get", json=body)
    assert answer.status_code == 200
    assert uids(answer.json()) == {studies["jones"]["Study"]}


def test_editing_a_server_keeps_its_secrets_and_renaming_moves_it(
    client: Orthanc, guarded: Orthanc, studies: dict[str, Any]
) -> None:
    found = {"PatientID": f"SMITH-{studies['tag']}"}
    assert client.post("/dicom-web/servers/official", json={"HasDelete": True}).status_code == 200
    saved = client.get("/dicom-web/servers?expand").json()["official"]
    assert (saved["Username"], saved["HasDelete"]) == ("alice", "1")
    assert len(qido(client, "official", found)) == 1  # the password is still there
    renamed = client.post("/dicom-web/servers/official", json={"Name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["Name"] == "renamed"
    assert client.get("/dicom-web/servers").json() == ["renamed"]
    assert len(qido(client, "renamed", found)) == 1
    # A name already taken is a conflict; a bad URL is refused, and nothing changes.
    definition = {"Url": guarded.url + "/dicom-web/"}
    assert client.put("/dicom-web/servers/other", json=definition).status_code == 200
    assert client.post("/dicom-web/servers/other", json={"Name": "renamed"}).status_code == 409
    bad = client.post("/dicom-web/servers/renamed", json={"Url": "pacs/dicom-web/"})
    assert bad.status_code == 400
    assert "http:// or https://" in bad.json()["Message"]
    assert client.put("/dicom-web/servers/x", json={"Url": "ftp://pacs/"}).status_code == 400
    assert client.post("/dicom-web/servers/missing", json={}).status_code == 404
    client.delete("/dicom-web/servers/other")
    assert client.post("/dicom-web/servers/renamed", json={"Name": "official"}).status_code == 200


def test_retrieve_jobs_count_the_instances_to_come(
    client: Orthanc, studies: dict[str, Any]
) -> None:
    body = {"Resources": [{"Study": studies["smith"]["Study"]}], "Synchronous": False}
    started = client.post("/dicom-web/servers/official/retrieve", json=body)
    assert started.status_code == 200, started.text
    deadline = time.monotonic() + 60
    job = client.get(f"/jobs/{started.json()['ID']}").json()
    while job["State"] not in ("Success", "Failure") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(f"/jobs/{started.json()['ID']}").json()
    assert job["State"] == "Success", job
    assert job["Content"]["InstancesCount"] == "3"
    assert job["Content"]["ReceivedInstancesCount"] == "3"
    assert job["Progress"] == 100


def test_a_bad_server_entry_is_left_out_and_everything_else_runs(
    orthanc_factory: Callable[..., Orthanc],
) -> None:
    servers = {"plain": "http://pacs/dicom-web/", "good": ["http://good/dicom-web/"]}
    orthanc = orthanc_factory({"DicomWeb": {"Servers": servers}})
    assert orthanc.get("/dicom-web/servers").json() == ["good"]
    assert orthanc.get("/dicom-web/studies").status_code == 200
    logged = [line for line in orthanc.log_text().splitlines() if "DicomWeb.Servers.plain" in line]
    assert len(logged) == 1
    assert logged[0].startswith("E") and "this DICOMweb server is ignored" in logged[0]
    assert '["http://pacs:8042/dicom-web/"]' in logged[0]


def test_a_clean_start_logs_no_error(orthanc_factory: Callable[..., Orthanc]) -> None:
    orthanc = orthanc_factory()
    errors = [line for line in orthanc.log_text().splitlines() if line.startswith("E")]
    assert errors == []
