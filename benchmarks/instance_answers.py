"""Single-instance answers side by side with the official plugin, with and without gzip.

`.venv/bin/python -m benchmarks.instance_answers [--turns 41]` starts Orthanc with each plugin
(as `benchmarks.run` does), stores the benchmark's CT series through the core on both, and
times, interleaved, requests for one CT slice (530 kB once decompressed, stored RLE): the
instance retrieved as stored (`transfer-syntax=*`) and with the default syntax, and one frame,
each from a client that accepts gzip (as `requests` and browsers do) and from one that does not.
Times are to the last byte (medians, ms); the ratio is official / python (above 1: faster).
With `--big-mb N`, also the time and Orthanc's peak memory growth (VmHWM) of retrieving one
generated N MB multi-frame instance (uncompressed, so no transcoding), with and without gzip.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import requests
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from . import dataset
from .measure import memory_kb
from .run import start
from .scenarios import Side

DICOM_AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
DICOM_DEFAULT = 'multipart/related; type="application/dicom"'
FRAME = 'multipart/related; type="application/octet-stream"'
ENCODINGS = {"gzip": "gzip, deflate", "no gzip": "identity"}


def requests_to_time(data: dataset.BenchData) -> dict[str, tuple[str, str]]:
    instance = (
        f"/dicom-web/studies/{data.ct_study_uid}/series/{data.ct_series_uid}"
        f"/instances/{data.middle_instance_uid}"
    )
    return {
        "Retrieve instance, as stored": (instance, DICOM_AS_STORED),
        "Retrieve instance, default syntax": (instance, DICOM_DEFAULT),
        "One frame, uncompressed": (instance + "/frames/1", FRAME),
    }


def load(side: Side, data: dataset.BenchData) -> None:
    for path in data.ct_files:
        side.request("POST", "/instances", data=path.read_bytes())


def settle(side: Side, data: dataset.BenchData) -> None:
    """Wait until the series is stable and the side idle: the plugin caches a stable series'
    metadata in the background (about a second of CPU), which must not overlap a measure."""
    series = side.request("POST", "/tools/lookup", data=data.ct_series_uid).json()[0]["ID"]
    while not side.request("GET", f"/series/{series}").json()["IsStable"]:
        time.sleep(0.2)
    side.idle()


def time_once(session: requests.Session, url: str, accept: str, encoding: str) -> float:
    start = time.perf_counter()
    answer = session.get(url, headers={"Accept": accept, "Accept-Encoding": encoding})
    answer.content  # noqa: B018 - to the last byte
    elapsed = time.perf_counter() - start
    answer.raise_for_status()
    return elapsed


def measure(sides: list[Side], data: dataset.BenchData, turns: int) -> None:
    sessions = {side.name: requests.Session() for side in sides}
    print(f"{'request':45s} {'client':8s} {'python':>8s} {'official':>9s} {'ratio':>6s}")
    for name, (path, accept) in requests_to_time(data).items():
        for label, encoding in ENCODINGS.items():
            times: dict[str, list[float]] = {side.name: [] for side in sides}
            for _ in range(turns):
                for side in sides:  # interleaved: both sides meet the same machine load
                    url = side.orthanc.url + path
                    times[side.name].append(time_once(sessions[side.name], url, accept, encoding))
            python, official = (1000 * statistics.median(times[n]) for n in ("python", "official"))
            print(f"{name:45s} {label:8s} {python:8.2f} {official:9.2f} {official / python:6.2f}")


def big_instance(data: dataset.BenchData, megabytes: int) -> tuple[bytes, str]:
    """A multi-frame instance of about `megabytes` MB (512x512 16-bit frames), and its path."""
    source = pydicom.dcmread(data.ct_files[0])
    source.decompress()
    frames = max(1, megabytes * 2**20 // (512 * 512 * 2))
    pixels = np.random.default_rng(1).integers(0, 4096, (frames, 512, 512), dtype=np.uint16)
    source.NumberOfFrames = frames
    source.StudyInstanceUID, source.SeriesInstanceUID = generate_uid(), generate_uid()
    source.SOPInstanceUID = source.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    source.PixelData = pixels.tobytes()
    source.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    source.save_as(out, enforce_file_format=True)
    path = f"/dicom-web/studies/{source.StudyInstanceUID}/series/{source.SeriesInstanceUID}"
    return out.getvalue(), f"{path}/instances/{source.SOPInstanceUID}"


def measure_big(sides: list[Side], data: dataset.BenchData, megabytes: int) -> None:
    body, path = big_instance(data, megabytes)
    for side in sides:
        side.request("POST", "/instances", data=body)
    print(f"{len(body) / 2**20:.0f} MB instance    client    seconds  peak RSS growth (MB)")
    for label, encoding in ENCODINGS.items():
        for side in sides:
            side.idle()
            Path(f"/proc/{side.pid}/clear_refs").write_text("5")  # VmHWM back to VmRSS
            base = memory_kb(side.pid, "VmRSS")
            url = side.orthanc.url + path
            seconds = time_once(requests.Session(), url, DICOM_AS_STORED, encoding)
            growth = (memory_kb(side.pid, "VmHWM") - base) / 1024
            print(f"{side.name:20s} {label:8s} {seconds:8.2f} {growth:10.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=41, help="requests per side and kind")
    parser.add_argument("--big-mb", type=int, default=0, help="also a multi-frame instance")
    arguments = parser.parse_args(argv)
    data = dataset.prepare()
    with tempfile.TemporaryDirectory(prefix="dicomweb-bench-") as workdir:
        sides = [start(Path(workdir), official=False), start(Path(workdir), official=True)]
        try:
            for side in sides:
                load(side, data)
            for side in sides:
                settle(side, data)
            measure(sides, data, arguments.turns)
            if arguments.big_mb:
                measure_big(sides, data, arguments.big_mb)
        finally:
            for side in sides:
                side.orthanc.stop()


if __name__ == "__main__":
    main()
