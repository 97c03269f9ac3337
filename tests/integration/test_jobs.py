"""The plugin's jobs through Orthanc's own `/jobs` API, merged with the core's jobs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness import Orthanc, orthanc_available
from tests.integration.test_client import make_study, wait_finished
from tests.unit.test_client import Remote, related

pytestmark = pytest.mark.skipif(not orthanc_available(), reason="Orthanc needed")


def slow_series(dicom: bytes, seconds: float) -> Callable[[BaseHTTPRequestHandler], None]:
    """A WADO-RS answer that trickles in for `seconds` (chunked), then completes."""
    body, content_type = related([dicom])

    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        steps = max(1, int(seconds / 0.05))
        size = -(-len(body) // steps)
        for start in range(0, len(body), size):
            chunk = body[start : start + size]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
            time.sleep(0.05)
        handler.wfile.write(b"0\r\n\r\n")

    return behaviour


@pytest.fixture
def slow_remote(test_files: dict[str, Path]) -> Iterator[Remote]:
    remote = Remote()
    dicom = test_files["ct"].read_bytes()
    remote.routes["/dicom-web/studies/1.2.3/series/4.5.6"] = slow_series(dicom, 3)
    remote.routes["/dicom-web/studies/1.2.3/series/4.5.8"] = slow_series(dicom, 30)
    remote.routes["/dicom-web/studies/1.2.3/series/4.5.7"] = slow_series(dicom, 0.2)
    yield remote
    remote.close()


def start_retrieve(orthanc: Orthanc, server: str, series: str, priority: int = 0) -> str:
    body = {
        "Resources": [{"Study": "1.2.3", "Series": series}],
        "Synchronous": False,
        "Priority": priority,
    }
    response = orthanc.post(f"/dicom-web/servers/{server}/retrieve", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["Path"].endswith("jobs/" + response.json()["ID"])
    return response.json()["ID"]


def wait_state(orthanc: Orthanc, job_id: str, state: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = orthanc.get(f"/jobs/{job_id}").json()
        if job["State"] == state:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {state}: {job}")


def test_jobs_api_merges_core_jobs_and_controls_ours(
    orthanc_factory: Callable[..., Orthanc],
    slow_remote: Remote,
    test_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    orthanc = orthanc_factory({"DicomWeb": {"Servers": {"slow": [slow_remote.url]}}})
    stored = orthanc.upload(make_study(tmp_path, 1, test_files["mr"])[2])
    archive = orthanc.post(
        f"/studies/{stored[0]['ParentStudy']}/archive", json={"Synchronous": False}
    )
    core_job = archive.json()["ID"]

    ours = start_retrieve(orthanc, "slow", "4.5.6", priority=5)
    running = wait_state(orthanc, ours, "Running")
    assert running["Type"] == "DicomWebWadoRetrieveClient"
    assert running["Priority"] == 5
    assert running["Content"]["Server"] == "slow"
    assert {"ID", "Progress", "CreationTime", "EffectiveRuntime", "ErrorCode"} <= set(running)

    listed = orthanc.get("/jobs").json()
    assert core_job in listed and ours in listed
    expanded = {job["ID"]: job for job in orthanc.get("/jobs?expand").json()}
    assert expanded[core_job]["Type"] == "Archive"
    assert expanded[ours]["Type"] == "DicomWebWadoRetrieveClient"
    assert orthanc.get(f"/jobs/{core_job}").json()["ID"] == core_job
    wait_state(orthanc, core_job, "Success")
    assert orthanc.get(f"/jobs/{core_job}/archive").content[:2] == b"PK"
    assert orthanc.get("/jobs/no-such-job").status_code == 404
    assert orthanc.post("/jobs/no-such-job/pause", json={}).status_code == 404

    assert orthanc.post(f"/jobs/{ours}/pause", json={}).status_code == 200
    wait_state(orthanc, ours, "Paused")
    assert orthanc.post(f"/jobs/{ours}/resume", json={}).status_code == 200
    wait_state(orthanc, ours, "Running")
    began = time.monotonic()
    assert orthanc.post(f"/jobs/{ours}/cancel", json={}).status_code == 200
    canceled = wait_state(orthanc, ours, "Failure")
    assert time.monotonic() - began < 1.5  # promptly, mid-transfer
    assert "canceled" in canceled["ErrorDescription"]
    assert orthanc.post(f"/jobs/{ours}/resume", json={}).status_code == 400

    # A canceled retrieve, resubmitted, finishes; then its instance is stored.
    assert orthanc.post(f"/jobs/{ours}/resubmit", json={}).status_code == 200
    done = wait_finished(orthanc, ours)
    assert done["State"] == "Success"
    assert done["Content"]["ReceivedInstancesCount"] == "1"
    assert orthanc.get(f"/instances/{done['Content']['Instances'][0]}").ok


def test_jobs_and_servers_survive_a_restart(
    orthanc_factory: Callable[..., Orthanc], slow_remote: Remote
) -> None:
    config = {
        "SaveJobs": True,
        "JobsHistorySize": 2,
        "ConcurrentJobs": 1,
        "DicomWeb": {"ServersInDatabase": True},
    }
    orthanc = orthanc_factory(config)
    assert orthanc.put("/dicom-web/servers/slow", json={"Url": slow_remote.url}).ok
    running = start_retrieve(orthanc, "slow", "4.5.8")  # lasts longer than the restart
    wait_state(orthanc, running, "Running")
    queued = start_retrieve(orthanc, "slow", "4.5.7", priority=3)
    paused = start_retrieve(orthanc, "slow", "4.5.7")
    assert orthanc.post(f"/jobs/{paused}/pause", json={}).ok

    orthanc.restart()

    assert orthanc.get("/dicom-web/servers").json() == ["slow"]
    restored = wait_finished(orthanc, queued)  # priority 3 runs before the restored one
    assert (restored["State"], restored["Priority"]) == ("Success", 3)
    assert orthanc.get(f"/jobs/{running}").json()["State"] in ("Pending", "Running")
    assert orthanc.post(f"/jobs/{running}/cancel", json={}).ok
    assert wait_finished(orthanc, running)["State"] == "Failure"
    assert orthanc.get(f"/jobs/{paused}").json()["State"] == "Paused"
    assert orthanc.post(f"/jobs/{paused}/resume", json={}).ok
    assert wait_finished(orthanc, paused)["State"] == "Success"
    # JobsHistorySize 2: the job that finished first is forgotten.
    assert orthanc.get(f"/jobs/{queued}").status_code == 404
    assert {running, paused} <= set(orthanc.get("/jobs").json())


def test_the_first_answers_after_a_start_know_the_saved_jobs(
    orthanc_factory: Callable[..., Orthanc],
) -> None:
    orthanc = orthanc_factory({"SaveJobs": True, "DicomWeb": {"ServersInDatabase": True}})
    assert orthanc.put("/dicom-web/servers/down", json={"Url": "http://127.0.0.1:9/"}).ok
    failed = wait_finished(orthanc, start_retrieve(orthanc, "down", "4.5.6"))
    assert failed["State"] == "Failure"
    orthanc.stop()
    orthanc.start(wait=False)
    first = first_answer(orthanc, "/jobs")
    # Saved jobs are restored just after the start: they were missing for about 0.2 s.
    assert failed["ID"] in first.json()
    assert orthanc.get(f"/jobs/{failed['ID']}").json()["State"] == "Failure"
    assert orthanc.post(f"/jobs/{failed['ID']}/resubmit", json={}).status_code == 200


def first_answer(orthanc: Orthanc, path: str, timeout: float = 60) -> Any:
    """The first answer of a starting Orthanc to `GET path`, asked as often as possible."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = orthanc.session.get(orthanc.url + path, timeout=10)
        except requests.RequestException:
            time.sleep(0.002)
            continue
        if answer.status_code != 404:  # 404: the core answered, before the plugin's routes
            return answer
    raise AssertionError(f"{path} never answered:\n{orthanc.log_tail()}")
