"""Two Orthancs with this plugin on one PostgreSQL index, behind nginx (samples/cluster).

Every node must give the same answers and see the same servers, jobs and deletions; a job
runs exactly once, even when 40 are submitted at once through both nodes or when its node is
killed while it runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from samples.cluster.cluster import Cluster, Node, missing_software
from tests.integration.test_client import make_study
from tests.unit.test_client import Remote, related, send

pytestmark = pytest.mark.skipif(
    bool(missing_software()), reason=f"Debian packages needed: {missing_software()}"
)

NODE_CONFIG = {
    "SaveJobs": True,
    "ConcurrentJobs": 2,
    "JobsHistorySize": 100,
    "DicomWeb": {
        "Enable": True,
        "ServersInDatabase": True,
        "Servers": {},
        "StowMaxInstances": 1,
    },
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster(tmp_path_factory.mktemp("cluster"), 2, overrides=NODE_CONFIG).start()
    yield started
    started.stop()


def stow(url: str, paths: list[Path]) -> dict[str, Any]:
    body, content_type = related([path.read_bytes() for path in paths])
    response = requests.post(
        f"{url}/dicom-web/studies", data=body, headers={"Content-Type": content_type}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


def get_json(url: str, path: str, **kwargs: Any) -> Any:
    response = requests.get(url + path, timeout=30, **kwargs)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    return response.json()


def wait_job(node: Node, job_id: str, states: tuple[str, ...], timeout: float = 40) -> Any:
    deadline = time.monotonic() + timeout
    job: Any = None
    while time.monotonic() < deadline:
        job = get_json(node.url, f"/jobs/{job_id}")
        if job["State"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


def study_instances_seen_by(node: Node, study: str) -> str:
    answer = get_json(node.url, "/dicom-web/studies", params={"StudyInstanceUID": study})
    return answer[0]["00201208"]["Value"][0] if answer else 0


def test_every_node_gives_the_same_answers(cluster: Cluster, tmp_path: Path, test_files) -> None:
    study, series, paths = make_study(tmp_path, 4, test_files["ct"])
    stow(cluster.url, paths[:2])  # through nginx, then through each node
    stow(cluster.nodes[0].url, paths[2:3])
    stow(cluster.nodes[1].url, paths[3:])
    uri = f"/dicom-web/studies/{study}/series/{series}/metadata"
    same_host = {"Host": "balanced.example"}  # as nginx forwards it: the same RetrieveURLs
    searches = [
        get_json(
            node.url, "/dicom-web/studies", params={"StudyInstanceUID": study}, headers=same_host
        )
        for node in cluster.nodes
    ]
    assert searches[0] == searches[1] and searches[0][0]["00201208"]["Value"] == [4]
    metadata = [get_json(node.url, uri, headers=same_host) for node in cluster.nodes]
    assert len(metadata[0]) == 4 and metadata[0] == metadata[1]


def test_one_node_builds_the_metadata_cache_of_a_series_stored_through_both(
    cluster: Cluster, tmp_path: Path, test_files
) -> None:
    _, series, paths = make_study(tmp_path, 4, test_files["ct"])
    stow(cluster.nodes[0].url, paths[:2])
    stow(cluster.nodes[1].url, paths[2:])  # both nodes are told the series is stable
    name = f"series-metadata:{lookup(cluster.nodes[0], series)}:%"
    claims = "SELECT count(*) FROM dicomweb_claims WHERE name LIKE %s"
    deadline = time.monotonic() + 15
    while query(cluster, claims, name) == [(0,)]:
        assert time.monotonic() < deadline, "no node built the series' metadata cache"
        time.sleep(0.1)
    time.sleep(2)  # the other node's attempt, had it been allowed, would be there by now
    assert query(cluster, claims, name) == [(1,)]


def test_servers_changed_through_one_node_are_seen_by_the_other(cluster: Cluster) -> None:
    first, second = cluster.nodes
    assert requests.put(f"{first.url}/dicom-web/servers/peer", json={"Url": "http://a/"}).ok
    assert "peer" in get_json(second.url, "/dicom-web/servers")
    assert requests.delete(f"{second.url}/dicom-web/servers/peer").ok
    assert "peer" not in get_json(first.url, "/dicom-web/servers")


def test_servers_added_at_once_through_both_nodes_are_all_kept(cluster: Cluster) -> None:
    def put(number: int) -> bool:
        url = f"{cluster.nodes[number % 2].url}/dicom-web/servers/many{number}"
        return requests.put(url, json={"Url": f"http://h{number}/"}, timeout=30).ok

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(put, range(20)))
    names = get_json(cluster.nodes[0].url, "/dicom-web/servers")
    assert {f"many{n}" for n in range(20)} <= set(names)
    for number in range(20):
        assert requests.delete(f"{cluster.url}/dicom-web/servers/many{number}", timeout=30).ok


def test_a_deletion_through_one_node_changes_the_other_nodes_searches(
    cluster: Cluster, tmp_path: Path, test_files
) -> None:
    first, second = cluster.nodes
    study, _, paths = make_study(tmp_path, 2, test_files["ct"])
    stored = stow(first.url, paths)
    assert study_instances_seen_by(second, study) == 2  # now kept in the second node's cache
    instance = stored["00081199"]["Value"][0]["00081190"]["Value"][0].rsplit("/", 1)[1]
    found = requests.post(f"{first.url}/tools/lookup", data=instance, timeout=10).json()
    assert requests.delete(f"{first.url}/instances/{found[0]['ID']}").ok
    # Orthanc reports the deletion to the plugin a moment later (its change callback).
    deadline = time.monotonic() + 3
    while study_instances_seen_by(second, study) != 1:
        assert time.monotonic() < deadline, "the second node keeps the old count"
        time.sleep(0.05)


@pytest.fixture
def counting_remote(cluster: Cluster) -> Iterator[Remote]:
    """A DICOMweb server, known to the cluster as `counting`, that accepts any STOW-RS."""
    remote = Remote()
    remote.routes["/dicom-web/studies"] = lambda handler: send(handler, 200, b"{}")
    assert requests.put(
        f"{cluster.url}/dicom-web/servers/counting", json={"Url": remote.url}, timeout=10
    ).ok
    yield remote
    remote.close()


def push(node: Node, resources: list[str]) -> str:
    body = {"Resources": resources, "Synchronous": False}
    response = requests.post(f"{node.url}/dicom-web/servers/counting/stow", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["ID"]


def test_jobs_submitted_at_once_through_both_nodes_run_once_each(
    cluster: Cluster, counting_remote: Remote, tmp_path: Path, test_files
) -> None:
    _, _, paths = make_study(tmp_path, 1, test_files["ct"])
    instance = requests.post(
        f"{cluster.nodes[0].url}/instances", data=paths[0].read_bytes(), timeout=30
    ).json()["ID"]
    with ThreadPoolExecutor(8) as pool:
        nodes = [cluster.nodes[i % 2] for i in range(40)]
        ids = list(pool.map(lambda node: push(node, [instance]), nodes))
    assert len(set(ids)) == 40
    for number, job_id in enumerate(ids):
        other = cluster.nodes[(number + 1) % 2]  # read through the node that did not submit it
        job = wait_job(other, job_id, ("Success", "Failure"))
        assert (job["ID"], job["State"]) == (job_id, "Success")
    assert len(counting_remote.requests) == 40
    listed = set(get_json(cluster.nodes[1].url, "/jobs"))
    assert set(ids) <= listed


def query(cluster: Cluster, sql: str, *values: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on the cluster's database (the plugin's shared tables)."""
    section = cluster.postgres.section()
    with psycopg.connect(
        host=section["Host"], port=section["Port"], user=section["Username"], dbname="postgres"
    ) as connection:
        return connection.execute(sql, values).fetchall()


def owner_of(cluster: Cluster, job_id: str) -> Node:
    [(owner,)] = query(cluster, "SELECT owner FROM dicomweb_jobs WHERE id = %s", job_id)
    return next(n for n in cluster.nodes if owner.startswith(n.config["Name"] + "-"))


def lookup(node: Node, uid: str) -> str:
    return requests.post(f"{node.url}/tools/lookup", data=uid, timeout=10).json()[0]["ID"]


def slow_stow(seconds: float) -> Any:
    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        send(handler, 200, b"{}")

    return behaviour


def act(node: Node, job_id: str, action: str) -> None:
    response = requests.post(f"{node.url}/jobs/{job_id}/{action}", json={}, timeout=30)
    assert response.status_code == 200, response.text


def test_any_node_controls_a_job_running_on_another(
    cluster: Cluster, counting_remote: Remote, tmp_path: Path, test_files
) -> None:
    counting_remote.routes["/dicom-web/studies"] = slow_stow(0.6)  # each step of 6 lasts
    _, series, paths = make_study(tmp_path, 6, test_files["ct"])
    stow(cluster.nodes[0].url, paths)
    job_id = push(cluster.nodes[0], [lookup(cluster.nodes[0], series)])
    wait_job(cluster.nodes[0], job_id, ("Running",))
    owner = owner_of(cluster, job_id)
    other = next(node for node in cluster.nodes if node is not owner)
    act(other, job_id, "pause")
    wait_job(owner, job_id, ("Paused",))
    act(owner, job_id, "resume")
    wait_job(other, job_id, ("Running",))
    act(other, job_id, "cancel")
    assert wait_job(owner, job_id, ("Success", "Failure"))["State"] == "Failure"
    act(owner, job_id, "resubmit")
    done = wait_job(other, job_id, ("Success", "Failure"))
    assert done["State"] == "Success" and len(done["Content"]["Instances"]) == 6


def test_a_job_whose_node_is_killed_is_finished_by_the_other_node(
    cluster: Cluster, counting_remote: Remote, tmp_path: Path, test_files
) -> None:
    counting_remote.routes["/dicom-web/studies"] = slow_stow(0.5)
    _, series, paths = make_study(tmp_path, 6, test_files["ct"])
    stow(cluster.nodes[0].url, paths)
    series_id = lookup(cluster.nodes[0], series)
    job_id = push(cluster.nodes[0], [series_id])  # 6 requests of 0.5 s (StowMaxInstances 1)
    wait_job(cluster.nodes[1], job_id, ("Running",))
    while len(counting_remote.requests) < 2:
        time.sleep(0.05)
    victim = owner_of(cluster, job_id)
    survivor = next(node for node in cluster.nodes if node is not victim)
    victim.kill()
    try:
        job = wait_job(survivor, job_id, ("Success", "Failure"), timeout=60)
        assert job["State"] == "Success"
        assert int(job["Content"]["InstancesCount"]) == 6
        assert len(job["Content"]["Instances"]) == 6
        # Each instance went out once, except the one in flight when the node died.
        assert 6 <= len(counting_remote.requests) <= 7
    finally:
        victim.start()


def test_a_restart_of_every_node_resumes_each_job_once(
    cluster: Cluster, counting_remote: Remote, tmp_path: Path, test_files
) -> None:
    counting_remote.routes["/dicom-web/studies"] = slow_stow(0.3)
    _, series, paths = make_study(tmp_path, 4, test_files["ct"])
    stow(cluster.nodes[0].url, paths)
    series_id = lookup(cluster.nodes[0], series)
    ids = [push(cluster.nodes[number], [series_id]) for number in (0, 1)]  # 4 requests each
    while len(counting_remote.requests) < 2:
        time.sleep(0.05)
    for node in cluster.nodes:
        node.stop()
    for node in cluster.nodes:
        node.start()
    for job_id in ids:
        job = wait_job(cluster.nodes[0], job_id, ("Success", "Failure"), timeout=60)
        assert job["State"] == "Success" and len(job["Content"]["Instances"]) == 4
    # Each instance went out once per job, except those in flight when the nodes stopped.
    assert 8 <= len(counting_remote.requests) <= 10
