"""ETags of searches over the whole database on two Orthancs sharing one PostgreSQL index: a
store or a deletion through one node changes the tag the other node gives (the change log and
the deletion token are the shared source, `index_cache.IndexCache.revision`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from samples.cluster.cluster import Cluster, Node, missing_software
from tests.integration.test_client import make_study
from tests.integration.test_cluster import NODE_CONFIG, stow

pytestmark = pytest.mark.skipif(
    bool(missing_software()), reason=f"Debian packages needed: {missing_software()}"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster(tmp_path_factory.mktemp("cluster-etags"), 2, overrides=NODE_CONFIG).start()
    yield started
    started.stop()


def search(node: Node, study: str, etag: str | None = None) -> requests.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return requests.get(
        f"{node.url}/dicom-web/studies",
        params={"StudyInstanceUID": study},
        headers=headers,
        timeout=30,
    )


def tag_after_the_change(node: Node, study: str, etag: str, timeout: float = 3) -> str:
    """The new tag of the node once it shows the change (a deletion is reported a moment later:
    Orthanc's change callback on the deleting node, then the token it writes)."""
    deadline = time.monotonic() + timeout
    while (answer := search(node, study, etag)).status_code == 304:
        assert time.monotonic() < deadline, "the node keeps answering 304 to the old tag"
        time.sleep(0.05)
    assert answer.status_code == 200, answer.text
    return answer.headers["ETag"]


def test_stores_and_deletions_through_one_node_change_the_others_tag(
    cluster: Cluster, tmp_path: Path, test_files: dict[str, Path]
) -> None:
    first, second = cluster.nodes
    study, _, paths = make_study(tmp_path, 3, test_files["ct"])
    stored = stow(first.url, paths[:2])
    etag = search(second, study).headers["ETag"]
    assert search(second, study, etag).status_code == 304

    stow(first.url, paths[2:])  # the change log, in the shared database
    answer = search(second, study, etag)
    assert answer.status_code == 200
    etag = answer.headers["ETag"]
    assert search(second, study, etag).status_code == 304

    instance = stored["00081199"]["Value"][0]["00081190"]["Value"][0].rsplit("/", 1)[1]
    found = requests.post(f"{first.url}/tools/lookup", data=instance, timeout=10).json()
    assert requests.delete(f"{first.url}/instances/{found[0]['ID']}", timeout=30).ok
    etag = tag_after_the_change(second, study, etag)
    assert search(second, study).json()[0]["00201208"]["Value"][0] == 2
    assert search(second, study, etag).status_code == 304
