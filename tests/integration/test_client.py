"""The DICOMweb client of a live Orthanc against live remotes: the official C++ plugin, this
plugin in a second Orthanc, and tiny local servers that misbehave."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.conftest import RUNNING
from tests.harness import Orthanc, orthanc_available
from tests.unit.test_client import Remote, answer, related, send

pytestmark = [
    pytest.mark.skipif(not orthanc_available(), reason="Orthanc with the Python plugin needed"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/dicom-web/"


def start(workdir: Path, overrides: dict[str, Any] | None = None) -> Orthanc:
    instance = Orthanc(workdir, overrides).start()
    RUNNING.append(instance)  # its log joins failure reports
    return instance


def stop(instance: Orthanc) -> None:
    instance.stop()
    if instance in RUNNING:
        RUNNING.remove(instance)


@pytest.fixture(scope="module")
def python_remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """A second Orthanc with this plugin, as a remote DICOMweb server."""
    instance = start(tmp_path_factory.mktemp("python-remote"))
    yield instance
    stop(instance)


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, official: Orthanc, python_remote: Orthanc
) -> Iterator[Orthanc]:
    """The Orthanc whose client is tested; remotes `official`, `python`, `down`."""
    servers = {
        "official": {"Url": f"{official.url}/dicom-web/", "Username": "u", "Password": "pw"},
        "python": {"Url": f"{python_remote.url}/dicom-web/", "HasDelete": True},
        "down": [closed_port_url()],
    }
    config = {"DicomWeb": {"StowMaxInstances": 2, "Servers": servers}, "HttpTimeout": 3}
    instance = start(tmp_path_factory.mktemp("client"), config)
    yield instance
    stop(instance)


def make_study(folder: Path, count: int, source: Path) -> tuple[str, str, list[Path]]:
    """A new study of `count` instances (fresh UIDs) derived from a pydicom file."""
    study, series = generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        dataset = pydicom.dcmread(source)
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.PatientID = "CLIENT-" + study[-12:]
        dataset.InstanceNumber = number + 1
        path = folder / f"{number}.dcm"
        dataset.save_as(path)
        paths.append(path)
    return study, series, paths


def instances_of_study(orthanc: Orthanc, study: str) -> list[str]:
    query = {"Level": "Instance", "Query": {"StudyInstanceUID": study}}
    return sorted(orthanc.post("/tools/find", json=query).json())


def remote_of(name: str, official: Orthanc, python_remote: Orthanc) -> Orthanc:
    return official if name == "official" else python_remote


# --- servers --------------------------------------------------------------------------------


def test_servers_rest_api(client: Orthanc) -> None:
    assert client.get("/dicom-web/servers").json() == ["down", "official", "python"]
    expanded = client.get("/dicom-web/servers?expand").json()
    assert expanded["official"]["Username"] == "u"
    assert "pw" not in json.dumps(expanded)
    assert "delete" in client.get("/dicom-web/servers/python").json()
    assert "delete" not in client.get("/dicom-web/servers/official").json()
    assert client.get("/dicom-web/servers/nope").status_code == 404
    definition = {"Url": "http://x.example/dw", "Password": "hidden", "Username": "me"}
    assert client.put("/dicom-web/servers/added", json=definition).status_code == 200
    assert "hidden" not in client.get("/dicom-web/servers?expand").text
    assert client.delete("/dicom-web/servers/added").status_code == 200
    assert client.delete("/dicom-web/servers/added").status_code == 404
    for bad in ({"Username": "x"}, {"Url": 7}, ["a", "b"], "text"):
        response = client.put("/dicom-web/servers/bad", json=bad)
        assert response.status_code == 400
        assert response.json()["Message"]


# --- push and retrieve, against both remotes --------------------------------------------------


@pytest.mark.parametrize("name", ["official", "python"])
def test_stow_then_retrieve_and_wado(
    name: str,
    client: Orthanc,
    official: Orthanc,
    python_remote: Orthanc,
    test_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    remote = remote_of(name, official, python_remote)
    study, series, paths = make_study(tmp_path, 5, test_files["ct"])
    stored = client.upload(paths)
    local_ids = sorted(answer["ID"] for answer in stored)

    pushed = client.post(
        f"/dicom-web/servers/{name}/stow", json={"Resources": [stored[0]["ParentStudy"]]}
    )
    assert pushed.status_code == 200, pushed.text
    content = pushed.json()
    assert content["InstancesCount"] == "5"
    assert sorted(content["Instances"]) == local_ids
    # The official plugin's form: the resources given, by level, and the instances sent.
    assert content["Resources"]["Studies"] == [stored[0]["ParentStudy"]]
    assert sorted(content["Resources"]["Instances"]) == local_ids
    assert "Series" not in content["Resources"]
    assert len(content["RemoteAnswers"]) == 3  # StowMaxInstances is 2
    assert len(instances_of_study(remote, study)) == 5

    client.delete(f"/studies/{stored[0]['ParentStudy']}")
    retrieved = client.post(
        f"/dicom-web/servers/{name}/retrieve", json={"Resources": [{"Study": study}]}
    )
    assert retrieved.status_code == 200, retrieved.text
    assert sorted(retrieved.json()["Instances"]) == local_ids
    assert retrieved.json()["ReceivedInstancesCount"] == "5"
    assert instances_of_study(client, study) == local_ids

    client.delete(f"/studies/{stored[0]['ParentStudy']}")
    wado = client.post(
        f"/dicom-web/servers/{name}/wado", json={"Uri": f"/studies/{study}/series/{series}"}
    )
    assert wado.status_code == 200, wado.text
    assert sorted(wado.json()["Instances"]) == local_ids


@pytest.mark.parametrize("name", ["official", "python"])
def test_qido_and_proxied_get(
    name: str,
    client: Orthanc,
    official: Orthanc,
    python_remote: Orthanc,
    test_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    remote = remote_of(name, official, python_remote)
    study, _, paths = make_study(tmp_path, 1, test_files["mr"])
    remote.upload(paths)
    query = {"Uri": "/studies", "Arguments": {"StudyInstanceUID": study}}
    found = client.post(f"/dicom-web/servers/{name}/qido", json=query)
    assert found.status_code == 200, found.text
    assert [s["0020000D"]["Value"][0] for s in found.json()] == [study]

    proxied = client.post(f"/dicom-web/servers/{name}/get", json=query)
    assert proxied.status_code == 200
    assert proxied.headers["Content-Type"].startswith("application/dicom+json")
    assert [s["0020000D"]["Value"][0] for s in proxied.json()] == [study]

    missing = client.post(f"/dicom-web/servers/{name}/get", json={"Uri": "/studies/1.2.3.4"})
    assert missing.status_code == 404
    assert name in missing.json()["Message"]


def test_delete_on_remotes(client: Orthanc, python_remote: Orthanc) -> None:
    body = {"Level": "Study", "StudyInstanceUID": "1.2.3.4"}
    refused = client.post("/dicom-web/servers/official/delete", json=body)
    assert refused.status_code == 400
    assert "HasDelete" in refused.json()["Message"]
    # This plugin's server side answers DELETE (or 405 when it does not yet): never a crash.
    answer_ = client.post("/dicom-web/servers/python/delete", json=body)
    assert answer_.status_code in (200, 404, 502)
    assert "python" in answer_.text or answer_.status_code == 200


def test_bad_requests_are_4xx(client: Orthanc) -> None:
    cases = [
        ("stow", {"Resources": ["not-an-id"]}, 400),
        ("stow", {"Resources": ["0badbad0-00000000-00000000-00000000-00000000"]}, 404),
        ("stow", {}, 400),
        ("retrieve", {"Resources": [{"Study": "1.2.x"}]}, 400),
        ("retrieve", {"Resources": [{"Study": "1.2"}], "Synchronous": "yes"}, 400),
        ("wado", {"Uri": "http://elsewhere.example/studies"}, 400),
        ("get", {"Uri": "../../tools"}, 400),
        ("qido", "not an object", 400),
    ]
    for operation, body, status in cases:
        response = client.post(f"/dicom-web/servers/official/{operation}", json=body)
        assert response.status_code == status, (operation, body, response.text)
        assert response.json()["Message"]
    unknown = client.post("/dicom-web/servers/nope/qido", json={"Uri": "/studies"})
    assert unknown.status_code == 404


# --- faults ---------------------------------------------------------------------------------


def test_remote_down_fails_the_job_and_resubmit_finishes_it(
    client: Orthanc, official: Orthanc, test_files: dict[str, Path], tmp_path: Path
) -> None:
    study, _, paths = make_study(tmp_path, 3, test_files["ct"])
    stored = client.upload(paths)
    resources = {"Resources": [stored[0]["ParentSeries"]]}
    synchronous = client.post("/dicom-web/servers/down/stow", json=resources)
    assert synchronous.status_code == 502
    assert "down" in synchronous.json()["Message"]
    assert "unreachable" in synchronous.json()["Message"]

    started = client.post(
        "/dicom-web/servers/down/stow", json={**resources, "Synchronous": False}
    ).json()
    assert set(started) == {"ID", "Path"}
    job = wait_finished(client, started["ID"])
    assert job["State"] == "Failure"
    assert "down" in job["ErrorDescription"]
    assert job["Type"] == "DicomWebStowClient"

    # The server comes back (here: its definition now points to a live one); resubmit.
    assert client.put("/dicom-web/servers/down", json=[f"{official.url}/dicom-web/"]).ok
    try:
        assert client.post(f"/jobs/{started['ID']}/resubmit", json={}).status_code == 200
        assert wait_finished(client, started["ID"])["State"] == "Success"
        assert len(instances_of_study(official, study)) == 3
    finally:
        client.put("/dicom-web/servers/down", json=[closed_port_url()])


def wait_finished(orthanc: Orthanc, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = orthanc.get(f"/jobs/{job_id}").json()
        if job["State"] in ("Success", "Failure"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture
def misbehaving(client: Orthanc) -> Iterator[Remote]:
    """A local server defined as `bad` in the client Orthanc."""
    remote = Remote()
    assert client.put("/dicom-web/servers/bad", json={"Url": remote.url, "Timeout": 1}).ok
    yield remote
    client.delete("/dicom-web/servers/bad")
    remote.close()


def test_remote_500_garbage_timeout_and_close_mid_transfer(
    client: Orthanc, misbehaving: Remote, test_files: dict[str, Path]
) -> None:
    dicom = test_files["ct"].read_bytes()
    body, content_type = related([dicom, dicom])

    def close_early(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 200, body[: len(body) // 2], content_type, length=len(body))
        handler.close_connection = True

    misbehaving.routes.update(
        {
            "/dicom-web/studies/1.1": answer(500, b"internal trouble"),
            "/dicom-web/studies/1.2": answer(200, b"<html>oops</html>", "text/html"),
            "/dicom-web/studies/1.3": lambda h: (time.sleep(2), send(h, 200, b"")),
            "/dicom-web/studies/1.4": close_early,
            "/dicom-web/studies": answer(200, b"[not json"),
        }
    )
    expected = {"1.1": "HTTP 500", "1.2": "multipart", "1.3": "within 1 s", "1.4": "mid-transfer"}
    for study, cause in expected.items():
        response = client.post(
            "/dicom-web/servers/bad/retrieve", json={"Resources": [{"Study": study}]}
        )
        assert response.status_code in (502, 504), response.text
        assert "bad" in response.json()["Message"]
        assert cause in response.json()["Message"] or cause in json.dumps(response.json())
    qido = client.post("/dicom-web/servers/bad/qido", json={"Uri": "/studies"})
    assert qido.status_code == 502
    assert client.get("/system").ok  # the plugin and Orthanc are fine


def test_a_certificate_that_does_not_verify(client: Orthanc, tmp_path: Path) -> None:
    from tests.unit.test_client import make_certificate, tls_context

    certificate = make_certificate(tmp_path)
    remote = Remote(tls_context(certificate))
    remote.routes["/dicom-web/studies"] = answer(200, b"[]")
    try:
        assert client.put("/dicom-web/servers/tls", json=[remote.url]).ok
        response = client.post("/dicom-web/servers/tls/qido", json={"Uri": "/studies"})
        assert response.status_code == 502
        assert "TLS certificate" in response.json()["Message"]
    finally:
        client.delete("/dicom-web/servers/tls")
        remote.close()
