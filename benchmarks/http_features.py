"""Benchmark of the HTTP features: 304 answers per second, ZIP retrieve beside multipart.

`.venv/bin/python -m benchmarks.http_features [--seconds 5]` starts an Orthanc with this
plugin, loads the benchmark data set (300-slice CT series, 401 small studies), and prints:
answers per second to repeated requests with and without `If-None-Match` (one client,
keep-alive), and the throughput and Orthanc's peak memory of Retrieve Series as ZIP and as
multipart (no gzip). Results go to benchmarks/results/http_features.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.harness import REPO, Orthanc

from . import dataset
from .measure import memory_kb, wait_until_idle

RESULTS = REPO / "benchmarks" / "results" / "http_features.json"
NO_GZIP = {"Accept-Encoding": "identity"}


def load(orthanc: Orthanc, data: dataset.BenchData) -> None:
    for path in data.ct_files + data.small_files:
        orthanc.post("/instances", data=path.read_bytes()).raise_for_status()


def rate(session: requests.Session, url: str, headers: dict[str, str], seconds: float) -> float:
    """Answers per second to the same request, one after the other."""
    count, deadline = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        session.get(url, headers=headers).raise_for_status()
        count += 1
    return count / (time.perf_counter() - start)


def conditional_rates(orthanc: Orthanc, path: str, seconds: float) -> dict[str, Any]:
    session = requests.Session()
    url = orthanc.url + path
    first = session.get(url, headers=NO_GZIP)
    first.raise_for_status()
    etag = first.headers["ETag"]
    again = session.get(url, headers={**NO_GZIP, "If-None-Match": etag})
    assert again.status_code == 304, (path, again.status_code)
    return {
        "bytes": len(first.content),
        "full_per_s": rate(session, url, NO_GZIP, seconds),
        "not_modified_per_s": rate(session, url, {**NO_GZIP, "If-None-Match": etag}, seconds),
    }


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux: `5` to /proc/{pid}/clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class AnonymousPeak:
    """The highest RssAnon (heap, not file pages) of a process, sampled every 5 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._running = pid, 0, True
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, memory_kb(self.pid, "RssAnon"))
            time.sleep(0.005)

    def __enter__(self) -> AnonymousPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._running = False
        self._thread.join()


def retrieve(orthanc: Orthanc, path: str, accept: str, check: Callable[[bytes], None]) -> dict:
    """Median time of 3 retrieves; the growth of Orthanc's peak RSS (file pages included) and
    of its anonymous memory (heap) during them."""
    pid = orthanc.process.pid  # type: ignore[union-attr]
    times, peaks, anonymous, size = [], [], [], 0
    for _ in range(3):
        wait_until_idle(pid)
        reset_peak(pid)
        base, base_anonymous = memory_kb(pid, "VmRSS"), memory_kb(pid, "RssAnon")
        with AnonymousPeak(pid) as sampled:
            start = time.perf_counter()
            answer = orthanc.get(path, headers={**NO_GZIP, "Accept": accept})
            times.append(time.perf_counter() - start)
        answer.raise_for_status()
        check(answer.content)
        size = len(answer.content)
        peaks.append(memory_kb(pid, "VmHWM") - base)
        anonymous.append(sampled.peak - base_anonymous)
    seconds = statistics.median(times)
    return {
        "bytes": size,
        "seconds": seconds,
        "mb_per_s": size / seconds / 1e6,
        "peak_rss_growth_mb": max(peaks) / 1024,
        "peak_anonymous_growth_mb": max(anonymous) / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per rate measure")
    arguments = parser.parse_args(argv)
    data = dataset.prepare()
    with tempfile.TemporaryDirectory() as work:
        orthanc = Orthanc(Path(work), {"DicomWeb": {"CacheMaxAge": 0}}).start()
        try:
            load(orthanc, data)
            wait_until_idle(orthanc.process.pid)  # type: ignore[union-attr]
            results = measure(orthanc, data, arguments.seconds)
        finally:
            orthanc.stop()
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


def measure(orthanc: Orthanc, data: dataset.BenchData, seconds: float) -> dict[str, Any]:
    series = f"/dicom-web/studies/{data.ct_study_uid}/series/{data.ct_series_uid}"
    instance = f"{series}/instances/{data.middle_instance_uid}"
    targets = {
        "Retrieve Instance (CT slice)": instance,
        "Retrieve Frames (1 frame)": instance + "/frames/1",
        "Rendered frame (JPEG)": instance + "/rendered",
        "Series metadata (300 instances)": series + "/metadata",
        "QIDO-RS /studies (401 studies)": "/dicom-web/studies",
    }
    conditional = {
        name: conditional_rates(orthanc, path, seconds) for name, path in targets.items()
    }
    multipart = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    return {
        "conditional": conditional,
        "retrieve_series": {
            "multipart": retrieve(orthanc, series, multipart, lambda body: None),
            "zip": retrieve(orthanc, series, "application/zip; transfer-syntax=*", zip_check),
        },
    }


def zip_check(body: bytes) -> None:
    assert body[:2] == b"PK", "not a ZIP"


if __name__ == "__main__":
    main()
