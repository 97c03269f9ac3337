"""Cluster benchmark: `.venv/bin/python -m benchmarks.cluster [--nodes 1 2 3] [--clients 8]`.

For each node count, starts two `samples/cluster` set-ups (PostgreSQL, the nodes, nginx) at once,
one with this plugin, one with the official plugin, and measures both through nginx under
`--clients` concurrent clients, the two taking turns (median of `--repetitions` turns):

- STOW-RS of the benchmark's 300-slice CT series (RLE, ~360 kB a slice) in requests of 10
  instances, onto an emptied database: instances/s;
- QIDO-RS `GET /dicom-web/studies?PatientName=M*` over 400 studies: requests/s;
- WADO-RS series metadata of the CT series (after a first call): requests/s.

Results go to benchmarks/results/cluster.json and are printed as a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from math import nan
from pathlib import Path
from typing import Any

import requests

from orthanc_dicomweb.http.multipart import encode_multipart, multipart_content_type, new_boundary
from samples.cluster.cluster import Cluster, missing_software

from . import dataset, measure

log = logging.getLogger("benchmarks.cluster")

RESULTS = Path(__file__).resolve().parent / "results" / "cluster.json"
BATCH = 10
TIMEOUT = 600
QIDO = "/dicom-web/studies?PatientName=M*"


def stow_bodies(paths: Sequence[Path]) -> list[tuple[bytes, str]]:
    bodies = []
    for start in range(0, len(paths), BATCH):
        boundary = new_boundary()
        parts = [(p.read_bytes(), "application/dicom", None) for p in paths[start : start + BATCH]]
        content_type = multipart_content_type("application/dicom", boundary)
        bodies.append((encode_multipart(parts, boundary), content_type))
    return bodies


def in_parallel(clients: int, jobs: Sequence[Callable[[], None]]) -> float:
    """Seconds taken by `jobs`, run by `clients` threads."""
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for done in [pool.submit(job) for job in jobs]:
            done.result()
    return time.perf_counter() - start


def post_stow(session: requests.Session, url: str, body: bytes, content_type: str) -> None:
    answer = session.post(
        f"{url}/dicom-web/studies", data=body, headers={"Content-Type": content_type}
    )
    if answer.status_code != 200:
        raise RuntimeError(f"STOW-RS answered {answer.status_code}: {answer.text[:300]}")


def wait_idle(cluster: Cluster) -> None:
    for node in cluster.nodes:
        assert node.process is not None
        measure.wait_until_idle(node.process.pid)


def empty(cluster: Cluster) -> None:
    patients = requests.get(cluster.url + "/patients", timeout=TIMEOUT).json()
    if patients:
        body = {"Resources": patients}
        requests.post(cluster.url + "/tools/bulk-delete", json=body, timeout=TIMEOUT)


def stow_seconds(cluster: Cluster, bodies: Sequence[tuple[bytes, str]], clients: int) -> float:
    """Seconds taken by one STOW-RS of `bodies`, onto an emptied database."""
    empty(cluster)
    wait_idle(cluster)
    session = requests.Session()
    return in_parallel(
        clients, [lambda b=b, t=t: post_stow(session, cluster.url, b, t) for b, t in bodies]
    )


def read_rate(url: str, paths: Sequence[str], clients: int, seconds: float) -> float:
    """Requests/s of GETs cycling through `paths` for `seconds`, `clients` at a time."""
    deadline = time.monotonic() + seconds
    counts = [0] * clients

    def client(number: int) -> None:
        session = requests.Session()
        for path in itertools.cycle(paths):
            if time.monotonic() > deadline:
                return
            session.get(url + path, timeout=TIMEOUT).raise_for_status()
            counts[number] += 1

    elapsed = in_parallel(clients, [lambda n=n: client(n) for n in range(clients)])
    return sum(counts) / elapsed


def load_small_studies(cluster: Cluster, paths: Sequence[Path]) -> None:
    session = requests.Session()
    jobs = [
        lambda p=p: session.post(cluster.url + "/instances", data=p.read_bytes()) for p in paths
    ]
    in_parallel(4, jobs)


def start_cluster(nodes: int, official: bool) -> Cluster:
    folder = Path(tempfile.mkdtemp(prefix="dicomweb-bench-cluster-"))
    cluster = Cluster(folder, nodes, official).start()  # stops what it started if it fails
    for node in cluster.nodes:  # verbose logs would be measured too
        requests.put(node.url + "/tools/log-level", data="default", timeout=10)
    return cluster


def in_turns(
    clusters: dict[str, Cluster], repetitions: int, measure_one: Callable[[Cluster], float]
) -> dict[str, float]:
    """Median of each side's figures, the sides taking turns (first one, then the other):
    a slow spell of this shared machine then weighs on both alike."""
    figures: dict[str, list[float]] = {side: [] for side in clusters}
    for turn in range(repetitions):
        order = list(clusters) if turn % 2 == 0 else list(reversed(clusters))
        for side in order:
            figures[side].append(measure_one(clusters[side]))
            log.info("turn %d, %s: %.1f", turn + 1, side, figures[side][-1])
    return {side: statistics.median(values) for side, values in figures.items()}


def measure_nodes(
    data: dataset.BenchData, nodes: int, arguments: argparse.Namespace
) -> list[dict[str, Any]]:
    """Both plugins' clusters of `nodes` nodes, running together, measured in turns."""
    clusters: dict[str, Cluster] = {}
    try:
        for side in arguments.sides:
            clusters[side] = start_cluster(nodes, side == "official")
        bodies = stow_bodies(data.ct_files)
        clients, seconds = arguments.clients, arguments.seconds
        stow = in_turns(
            clusters,
            arguments.repetitions,
            lambda c: len(data.ct_files) / stow_seconds(c, bodies, clients),
        )
        if arguments.only == "stow":
            return rows(nodes, clients, {"stow_instances_s": stow})
        metadata = f"/dicom-web/studies/{data.ct_study_uid}/series/{data.ct_series_uid}/metadata"
        for cluster in clusters.values():
            load_small_studies(cluster, data.small_files)
        time.sleep(2)  # StableAge 1: the series caches are built now, not while measuring
        for cluster in clusters.values():
            wait_idle(cluster)
            requests.get(cluster.url + metadata, timeout=TIMEOUT).raise_for_status()

        def reads(paths: list[str]) -> Callable[[Cluster], float]:
            def rate(cluster: Cluster) -> float:
                wait_idle(cluster)
                return read_rate(cluster.url, paths, clients, seconds)

            return rate

        qido = in_turns(clusters, arguments.repetitions, reads([QIDO]))
        series = in_turns(clusters, arguments.repetitions, reads([metadata]))
    finally:
        for cluster in clusters.values():
            cluster.stop()
    figures = {"stow_instances_s": stow, "qido_requests_s": qido, "metadata_requests_s": series}
    return rows(nodes, clients, figures)


def rows(nodes: int, clients: int, figures: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """One result row per side, from each measurement's figure per side."""
    sides = next(iter(figures.values()))
    return [
        {"nodes": nodes, "side": side, "clients": clients}
        | {name: values[side] for name, values in figures.items()}
        for side in sides
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per read measurement")
    parser.add_argument("--sides", nargs="+", default=["python", "official"])
    parser.add_argument("--only", choices=["stow"], help="measure STOW-RS alone")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    missing = missing_software()
    if missing:
        raise SystemExit(f"Install the Debian packages first: {' '.join(missing)}")
    data = dataset.prepare()
    results: list[dict[str, Any]] = []
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for nodes in arguments.nodes:
        results += measure_nodes(data, nodes, arguments)
        log.info("%s", results[-len(arguments.sides) :])
        RESULTS.write_text(json.dumps(results, indent=1))  # kept if a later count fails
    print(f"{'nodes':>5} {'side':>9} {'STOW inst/s':>12} {'QIDO req/s':>11} {'metadata req/s':>15}")
    for row in results:
        qido, metadata = row.get("qido_requests_s", nan), row.get("metadata_requests_s", nan)
        print(
            f"{row['nodes']:>5} {row['side']:>9} {row['stow_instances_s']:>12.1f} "
            f"{qido:>11.1f} {metadata:>15.1f}"
        )


if __name__ == "__main__":
    main()
