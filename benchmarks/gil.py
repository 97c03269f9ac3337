"""Where the Python plugin's GIL is the limit, and how core calls over HTTP loopback avoid it.

Plugin 4.0 keeps the GIL while inside `orthanc.*` calls, so one callback busy in a long core
call stalls every other Python callback, although the core's HTTP server is multi-threaded.
This benchmark measures a cheap route (1 and 8 clients) alone and while one client keeps a
slow route busy:

1. this plugin: cheap `GET /plugins/dicom-web` (pure Python) versus the core's `GET /system`
   (no Python), under Retrieve Series with transcoding and uncached series metadata;
2. a throw-away probe plugin whose slow route makes the same heavy core call (the series'
   ZIP archive) either through `orthanc.RestApiGet` or through HTTP to its own Orthanc,
   which waits on a socket with the GIL released.

Run: `.venv/bin/python -m benchmarks.gil [--seconds 2]` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.harness import Orthanc

from .dataset import prepare
from .measure import LoadResult, run_load, wait_until_idle

log = logging.getLogger(__name__)

CLIENT_COUNTS = (1, 8)
TRANSCODED = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'

# The probe plugin: a cheap route and the same heavy core GET made two ways.
PROBE_SCRIPT = """
import json
import urllib.request

import orthanc

PORT = json.loads(orthanc.GetConfiguration())["HttpPort"]
TOKEN = orthanc.GenerateRestApiAuthorizationToken()


def cheap(output, uri, **request):
    output.AnswerBuffer(b"ok", "text/plain")


def through_sdk(output, uri, **request):
    body = orthanc.RestApiGet("/" + request["groups"][0])
    output.AnswerBuffer(str(len(body)).encode(), "text/plain")


def through_http(output, uri, **request):
    headers = {"Authorization": TOKEN} if TOKEN else {}
    url = "http://127.0.0.1:%d/%s" % (PORT, request["groups"][0])
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
        body = answer.read()
    output.AnswerBuffer(str(len(body)).encode(), "text/plain")


orthanc.RegisterRestCallback("/gil/cheap", cheap)
orthanc.RegisterRestCallback("/gil/sdk/(.*)", through_sdk)
orthanc.RegisterRestCallback("/gil/http/(.*)", through_http)
"""


def getter(server: Orthanc, path: str, headers: dict[str, str] | None = None) -> Callable[[], bool]:
    """One request with its own connection pool, so clients do not share a session."""
    session = requests.Session()
    url = server.url + path

    def get() -> bool:
        return session.get(url, headers=headers, timeout=120).status_code == 200

    return get


@contextmanager
def background(load: Callable[[], bool] | None) -> Iterator[list[int]]:
    """Keep `load` running in a loop in a thread while the block runs; yields its count."""
    done: list[int] = [0]
    stop = threading.Event()

    def loop() -> None:
        while load is not None and not stop.is_set():
            load()
            done[0] += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join()


def measure(
    server: Orthanc, cheap: str, clients: int, load: Callable[[], bool] | None, seconds: float
) -> tuple[LoadResult, int]:
    """The cheap route's load result, and how many slow requests completed meanwhile."""
    wait_until_idle(server.process.pid)
    with background(load) as slow_done:
        gets = [getter(server, cheap) for _ in range(clients)]
        result = run_load([lambda _n, get=get: get() for get in gets], seconds)
    return result, slow_done[0]


def print_row(cheap: str, load_name: str, clients: int, result: LoadResult, slow: int) -> None:
    print(
        f"{cheap:<20} {load_name:<34} {clients:>3} {result.requests_per_second:>8.0f}"
        f" {result.latency_ms(0.5):>8.1f} {result.latency_ms(0.95):>8.1f}"
        f" {result.latency_ms(1.0):>8.1f} {result.errors:>4} {slow:>5}"
    )


def print_header(title: str) -> None:
    print(f"\n{title}")
    print(
        f"{'cheap route':<20} {'slow route kept busy by 1 client':<34} {'cl':>3} {'req/s':>8}"
        f" {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'err':>4} {'slow':>5}"
    )


def run_table(
    server: Orthanc,
    cheap_routes: tuple[str, ...],
    loads: dict[str, Callable[[], bool] | None],
    seconds: float,
) -> None:
    for load_name, load in loads.items():
        for cheap in cheap_routes:
            for clients in CLIENT_COUNTS:
                result, slow = measure(server, cheap, clients, load, seconds)
                print_row(cheap, load_name, clients, result, slow)


def time_one(load: Callable[[], bool]) -> str:
    """Duration of one slow request alone, to read the table with."""
    start = time.perf_counter()
    ok = load()
    return f"{1000 * (time.perf_counter() - start):.0f} ms{'' if ok else ' (FAILED)'}"


def run_loads(
    server: Orthanc,
    title: str,
    cheap_routes: tuple[str, ...],
    loads: dict[str, Callable[[], bool] | None],
    seconds: float,
) -> None:
    """Time each load alone, then the cheap routes under each load."""
    for name, load in loads.items():
        if load is not None:
            print(f"one '{name}' alone: {time_one(load)}")
    print_header(title)
    run_table(server, cheap_routes, loads, seconds)


def bench_plugin(workdir: Path, study: str, series: str, seconds: float) -> None:
    server = Orthanc(workdir, {"DicomWeb": {"EnableMetadataCache": False}}).start()
    try:
        base = f"/dicom-web/studies/{study}/series/{series}"
        loads = {
            "none": None,
            "Retrieve Series, transcoded": getter(server, base, {"Accept": TRANSCODED}),
            "series metadata, no cache": getter(server, base + "/metadata"),
        }
        run_loads(
            server,
            "1. this plugin (GIL held in orthanc.* calls)",
            ("/plugins/dicom-web", "/system"),
            loads,
            seconds,
        )
    finally:
        server.stop()


def bench_probe(workdir: Path, series_id: str, seconds: float) -> None:
    script = workdir / "gil_probe.py"
    script.write_text(PROBE_SCRIPT)
    server = Orthanc(workdir, {"PythonScript": str(script)}).start()
    try:
        archive = f"series/{series_id}/archive"
        loads = {
            "none": None,
            "archive via orthanc.RestApiGet": getter(server, f"/gil/sdk/{archive}"),
            "archive via HTTP loopback": getter(server, f"/gil/http/{archive}"),
        }
        run_loads(
            server,
            "2. probe plugin: same heavy core call, SDK versus HTTP loopback",
            ("/gil/cheap", "/system"),
            loads,
            seconds,
        )
    finally:
        server.stop()


def upload_series(workdir: Path) -> tuple[str, str, str]:
    """Store the 300-slice CT series once (both Orthancs reuse the storage); its UIDs and id."""
    data = prepare()
    server = Orthanc(workdir).start()
    try:
        answers = server.upload(data.ct_files)
    finally:
        server.stop()
    return data.ct_study_uid, data.ct_series_uid, answers[0]["ParentSeries"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each cell")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    with tempfile.TemporaryDirectory(prefix="gil-bench-") as tmp:
        workdir = Path(tmp)
        study, series, series_id = upload_series(workdir)
        bench_plugin(workdir, study, series, args.seconds)
        bench_probe(workdir, series_id, args.seconds)


if __name__ == "__main__":
    main()
