"""Concurrency scenario: retrieve, frames and rendered images with several clients at once.

`.venv/bin/python -m benchmarks.concurrency [--turns 3] [--seconds 10]` starts one Orthanc
with this plugin and one with the official plugin, stores the benchmark data set (the 300-slice
CT series and the 400 small studies) through the core on both, and measures, the sides taking
turns (official, python, python, official...), medians of the turns:

- Retrieve Series with `transfer-syntax=*` by 1, 4 and 8 clients at once, each a curl process
  downloading the series `DOWNLOADS` times (client.py: what a client sees, to the last byte):
  aggregate MB/s, from the first request to the last byte of the last client;
- QIDO-RS latency while 4 such clients run (`PatientName=M*` over the small studies), and
  alone, median ms;
- 8 clients asking frames (uncompressed, one part) and rendered JPEG frames of the series'
  instances in a seeded mixed order: requests/s, p50 and p95 latency, errors.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from . import client, dataset, measure
from .run import start
from .scenarios import DICOM_JSON, DICOMWEB, MB, Side, retrieve_accept

DOWNLOADS = 3  # per client and turn
QIDO = "/studies?PatientName=M*"
RAW_FRAME = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def store_all(sides: Sequence[Side], files: Sequence[Path]) -> None:
    """Every file stored on every side through the core, 4 stores at a time per side."""
    local = threading.local()

    def post(url: str, body: bytes) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        local.session.post(url + "/instances", data=body, timeout=120).raise_for_status()

    with ThreadPoolExecutor(4 * len(sides)) as pool:
        for path in files:
            body = path.read_bytes()
            for side in sides:
                pool.submit(post, side.orthanc.url, body)


def aggregate_rate(side: Side, series_url: str, clients: int) -> float:
    """MB/s of `clients` curl processes each retrieving the series `DOWNLOADS` times."""
    headers = {"Accept": retrieve_accept("*")}
    started = time.perf_counter()
    processes = [
        client.start([side.orthanc.url + series_url] * DOWNLOADS, headers) for _ in range(clients)
    ]
    transfers = [t for process in processes for t in client.finish(process)]
    elapsed = time.perf_counter() - started
    if any(t.status != 200 for t in transfers):
        raise OSError(f"{side.name}: statuses {[t.status for t in transfers]}")
    return sum(t.size for t in transfers) / elapsed / MB


def qido_ms(side: Side, seconds: float, busy: Callable[[], bool]) -> float:
    """Median latency of the search, asked in a loop while `busy()` (or for `seconds`)."""
    session = requests.Session()
    latencies = []
    deadline = time.monotonic() + seconds
    while busy() and time.monotonic() < deadline:
        start_ = time.perf_counter()
        response = session.get(side.orthanc.url + DICOMWEB + QIDO, headers=DICOM_JSON, timeout=60)
        response.raise_for_status()
        latencies.append(time.perf_counter() - start_)
    return 1000 * statistics.median(latencies)


def qido_during_retrieves(side: Side, series_url: str, clients: int = 4) -> float:
    headers = {"Accept": retrieve_accept("*")}
    processes = [
        client.start([side.orthanc.url + series_url] * DOWNLOADS, headers) for _ in range(clients)
    ]
    try:
        time.sleep(0.2)  # the retrieves are under way
        return qido_ms(side, 600, lambda: all(p.poll() is None for p in processes))
    finally:
        for process in processes:
            client.finish(process)


def image_menu(data: dataset.BenchData) -> list[tuple[str, str]]:
    """(path, Accept) of frames and rendered frames of the CT series' instances."""
    series = f"{DICOMWEB}/studies/{data.ct_study_uid}/series/{data.ct_series_uid}"
    menu = []
    for uid in data.ct_instance_uids[::10]:
        menu.append((f"{series}/instances/{uid}/frames/1", RAW_FRAME))
        menu.append((f"{series}/instances/{uid}/frames/1/rendered", "image/jpeg"))
    return menu


def image_load(side: Side, menu: Sequence[tuple[str, str]], seconds: float) -> list[float]:
    """8 clients, the same seeded order on both sides: req/s, p50 and p95 ms, errors."""

    def one_client(seed: int) -> Callable[[int], bool]:
        session = requests.Session()
        order = random.Random(seed)

        def one(_count: int) -> bool:
            path, accept = order.choice(menu)
            try:
                response = session.get(
                    side.orthanc.url + path, headers={"Accept": accept}, timeout=60
                )
            except requests.RequestException:
                return False
            return response.status_code == 200 and bool(response.content)

        return one

    result = measure.run_load([one_client(seed) for seed in range(8)], seconds)
    return [
        result.requests_per_second,
        result.latency_ms(0.5),
        result.latency_ms(0.95),
        float(result.errors),
    ]


def in_turns(
    sides: Sequence[Side], turns: int, measure_: Callable[[Side], list[float]]
) -> dict[str, list[float]]:
    """Medians of each figure, the sides taking turns; both idle before each turn."""
    runs: dict[str, list[list[float]]] = {side.name: [] for side in sides}
    for turn in range(turns):
        for side in sides if turn % 2 == 0 else sides[::-1]:
            for each in sides:
                each.idle()
            runs[side.name].append(measure_(side))
    return {
        name: [statistics.median(v) for v in zip(*rows, strict=True)] for name, rows in runs.items()
    }


def line(name: str, unit: str, official: float, python: float, higher_is_better: bool) -> str:
    ratio = python / official if higher_is_better else official / python
    return f"{name:<48} {unit:<6} {official:>9.1f} {python:>9.1f} {ratio:>6.2f}x"


def run(turns: int, seconds: float, workdir: Path) -> Iterator[str]:
    data = dataset.prepare()
    official, python = start(workdir, official=True), start(workdir, official=False)
    sides = (official, python)
    series_url = f"{DICOMWEB}/studies/{data.ct_study_uid}/series/{data.ct_series_uid}"
    try:
        store_all(sides, data.ct_files + data.small_files)
        for side in sides:  # warm the page cache and the plugins' first-call work
            aggregate_rate(side, series_url, 1)
        yield f"{'operation':<48} {'unit':<6} {'official':>9} {'python':>9} ratio (x better)"
        for clients in (1, 4, 8):
            found = in_turns(sides, turns, lambda s, n=clients: [aggregate_rate(s, series_url, n)])
            name = f"Retrieve series, {clients} client(s), aggregate"
            yield line(name, "MB/s", found["official"][0], found["python"][0], True)
        alone = in_turns(sides, turns, lambda s: [qido_ms(s, 2, lambda: True)])
        yield line(
            "QIDO-RS PatientName=M*, alone", "ms", alone["official"][0], alone["python"][0], False
        )
        during = in_turns(sides, turns, lambda s: [qido_during_retrieves(s, series_url)])
        name = "QIDO-RS PatientName=M*, during 4 retrieves"
        yield line(name, "ms", during["official"][0], during["python"][0], False)
        menu = image_menu(data)
        mixed = in_turns(sides, turns, lambda s: image_load(s, menu, seconds))
        title = "8 clients, frames + rendered (mixed)"
        yield line(title + ": throughput", "req/s", mixed["official"][0], mixed["python"][0], True)
        yield line(title + ": p50", "ms", mixed["official"][1], mixed["python"][1], False)
        yield line(title + ": p95", "ms", mixed["official"][2], mixed["python"][2], False)
        errors = mixed["official"][3], mixed["python"][3]
        yield f"{title + ': errors':<48} {'count':<6} {errors[0]:>9.0f} {errors[1]:>9.0f}"
    finally:
        official.orthanc.stop()
        python.orthanc.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=3, help="timed turns per side")
    parser.add_argument("--seconds", type=float, default=10, help="length of the image load")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dicomweb-concurrency-") as workdir:
        for text in run(arguments.turns, arguments.seconds, Path(workdir)):
            print(text, flush=True)


if __name__ == "__main__":
    main()
