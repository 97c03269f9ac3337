"""Scale scenario: how each search's cost and the process memory grow with the database.

`.venv/bin/python -m benchmarks.scale [--sizes 1000,10000,50000]` starts one Orthanc with this
plugin and one with the official plugin, and for each size stores generated small instances
(one study, one series, one instance each, a few hundred bytes of pixels) through the core's
own `POST /instances` on both sides in parallel, then times the same searches on both sides,
taking turns (official, python, python, official...), and prints the medians, the ratio
(official / python), each process's CPU time per search (mean of the turns: a figure that
other work on a shared machine leaves alone) and each process's resident memory (VmRSS)
after the searches.

Searches answer results the core finds: the count of each answer is checked against
`/tools/find` on the same side, untimed. Each size's loading and settling times are printed
before its searches (2026-12-03: 40,000 studies in 205 s on both sides at once, then 51 s of
this plugin's background work). `--keep DIR` keeps both Orthancs' storage and index there, to
profile a side at the largest size afterwards (`tests.harness.Orthanc(DIR / "python")`).
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from . import measure
from .run import start
from .scenarios import DICOM_JSON, Side, WrongAnswer

UID_PREFIX = "1.2.826.0.1.3680043.8.498.78."
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
FAMILY_NAMES = ("SMITH", "JONES", "MÜLLER", "GARCÍA", "NGUYEN", "KOWALSKI", "ROSSI", "DUBOIS")
GIVEN_NAMES = ("ANNA", "JOHN", "ZOË", "MARIO", "EVA", "OLEG")
MODALITIES = ("CT", "MR", "US", "CR", "DX", "XA")
LOADERS = 4  # parallel stores per side: the core's storing is the limit
TURNS = 5
IDLE_TIMEOUT = 900  # seconds
SETTLED_SECONDS = 5


@dataclass(frozen=True)
class Query:
    """A search and the core's `/tools/find` giving the same number of results."""

    name: str
    path: str
    find: dict

    def expected(self, side: Side) -> int:
        return len(side.request("POST", "/tools/find", json=self.find).json())


QUERIES = (
    Query("all studies", "/studies", {"Level": "Study", "Query": {}}),
    Query("limit=100", "/studies?limit=100", {"Level": "Study", "Query": {}, "Limit": 100}),
    Query(
        "StudyDate range",
        "/studies?StudyDate=20150101-20150131",
        {"Level": "Study", "Query": {"StudyDate": "20150101-20150131"}},
    ),
    Query(
        "PatientName=SMITH* limit 100",
        "/studies?PatientName=SMITH*&limit=100",
        {"Level": "Study", "Query": {"PatientName": "SMITH*"}, "Limit": 100},
    ),
    Query(
        "last page (offset, limit 100)",
        "/studies?offset={last}&limit=100",
        {"Level": "Study", "Query": {}, "Since": "{last}", "Limit": 100},
    ),
)


def instance(number: int) -> bytes:
    """A small secondary-capture instance, its own study and series (deterministic)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    sop = str(generate_uid(UID_PREFIX, [f"instance-{number}"]))
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = SECONDARY_CAPTURE, sop
    ds.StudyInstanceUID = str(generate_uid(UID_PREFIX, [f"study-{number}"]))
    ds.SeriesInstanceUID = str(generate_uid(UID_PREFIX, [f"series-{number}"]))
    patient = number // 2
    ds.PatientID = f"SCALE-{patient:06d}"
    family = FAMILY_NAMES[patient % len(FAMILY_NAMES)]
    ds.PatientName = f"{family}^{GIVEN_NAMES[patient % len(GIVEN_NAMES)]}"
    ds.PatientBirthDate = f"{1930 + patient % 80}0{1 + patient % 9}15"
    ds.PatientSex = "FM"[patient % 2]
    day = number % 3650
    date = f"{2015 + day // 365}{1 + day % 365 // 31 % 12:02d}{1 + day % 28:02d}"
    ds.StudyDate = ds.SeriesDate = date
    ds.StudyTime = f"{8 + number % 10:02d}{number % 60:02d}00"
    ds.AccessionNumber, ds.StudyID = f"SC{number:08d}", str(number)
    ds.StudyDescription, ds.SeriesDescription = f"Scale study {number % 50}", "Scale series"
    ds.Modality = MODALITIES[number % len(MODALITIES)]
    ds.SeriesNumber = ds.InstanceNumber = 1
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.full((8, 8), number % 256, dtype=np.uint8).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def store(sides: Sequence[Side], start: int, stop: int) -> None:
    """Instances `start` to `stop` stored on every side, `LOADERS` stores at a time per side,
    the sides at the same time (generated once, shared)."""
    local = threading.local()

    def post(url: str, body: bytes) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        local.session.post(url + "/instances", data=body, timeout=120).raise_for_status()

    with ThreadPoolExecutor(LOADERS * len(sides)) as pool:
        for number in range(start, stop):
            body = instance(number)
            for side in sides:
                pool.submit(post, side.orthanc.url, body)
        pool.shutdown(wait=True)
    for side in sides:
        count = side.request("GET", "/statistics").json()["CountStudies"]
        if count < stop:
            raise WrongAnswer(f"{side.name} holds {count} studies, {stop} expected")


def wait_until_settled(side: Side) -> None:
    """Wait until the side's background work is over: this plugin caches the metadata of
    every new series once stable (a minute or more per 10,000 here), and searches timed
    during it were 10x slower. On a loaded machine a busy process may use less than the
    idle threshold of CPU: its change log (each cached series adds a change) must also stay
    still for `SETTLED_SECONDS`."""
    deadline = time.monotonic() + IDLE_TIMEOUT
    while time.monotonic() < deadline:
        last = side.request("GET", "/changes?last").json()["Last"]
        measure.wait_until_idle(side.pid, timeout=IDLE_TIMEOUT)
        time.sleep(SETTLED_SECONDS)
        if side.request("GET", "/changes?last").json()["Last"] == last:
            return


def timed_search(side: Side, path: str, expected: int) -> float:
    """Seconds of one search, to the last byte of the answer; the count is checked after."""
    start = time.perf_counter()
    response = side.request("GET", "/dicom-web" + path, headers=DICOM_JSON)
    elapsed = time.perf_counter() - start
    found = len(response.json())
    if found != expected:
        raise WrongAnswer(f"{side.name} {path}: {found} results, the core finds {expected}")
    return elapsed


def measure_size(sides: Sequence[Side], size: int, turns: int) -> list[str]:
    """One line per search at this size: medians (ms) and the ratio; then the memory before
    and after the searches (what the searches' peaks left in the process)."""
    lines = []
    rss_before = memory_line(sides, size, "VmRSS before the searches (MB)")
    last = max(size - 100, 0)
    for query in QUERIES:
        path = query.path.format(last=last)
        find = {**query.find}
        if find.get("Since") == "{last}":
            find["Since"] = last
        times: dict[str, list[float]] = {side.name: [] for side in sides}
        cpu = {side.name: 0.0 for side in sides}
        expected = {side.name: Query(query.name, path, find).expected(side) for side in sides}
        for turn in range(turns):
            for side in sides if turn % 2 == 0 else sides[::-1]:
                timed_search(side, path, expected[side.name])  # warm-up, untimed
                before = measure.cpu_seconds(side.pid)
                times[side.name].append(timed_search(side, path, expected[side.name]))
                cpu[side.name] += measure.cpu_seconds(side.pid) - before
        official, python = (1000 * statistics.median(times[s.name]) for s in sides)
        # CPU of each process per search (mean of the turns, 10 ms ticks): what other work
        # on a shared machine does not change.
        cpu_official, cpu_python = (1000 * cpu[s.name] / turns for s in sides)
        lines.append(
            f"{size:>7} {query.name:<32} {expected[sides[1].name]:>6} "
            f"{official:>9.1f} {python:>8.1f} {official / python:>6.1f}x "
            f"{cpu_official:>9.0f} {cpu_python:>8.0f}"
        )
    return [*lines, rss_before, memory_line(sides, size, "VmRSS after the searches (MB)")]


def memory_line(sides: Sequence[Side], size: int, label: str) -> str:
    rss = [measure.memory_kb(side.pid, "VmRSS") / 1024 for side in sides]
    return f"{size:>7} {label:<32} {'':>6} {rss[0]:>9.0f} {rss[1]:>8.0f}"


def run(sizes: Sequence[int], turns: int, workdir: Path) -> Iterator[str]:
    official, python = start(workdir, official=True), start(workdir, official=False)
    sides = (official, python)
    try:
        yield (
            f"{'studies':>7} {'search (ms)':<32} {'found':>6} {'official':>9} {'python':>8} "
            f"{'ratio':>7} {'cpu off.':>9} {'cpu py.':>8}"
        )
        stored = 0
        for size in sorted(sizes):
            started = time.monotonic()
            store(sides, stored, size)
            loaded = time.monotonic() - started
            for side in sides:
                wait_until_settled(side)
            settled = time.monotonic() - started - loaded
            yield (
                f"{size:>7} loaded {size - stored} studies on both sides in {loaded:.0f} s, "
                f"settled in {settled:.0f} s"
            )
            stored = size
            yield from measure_size(sides, size, turns)
    finally:
        official.orthanc.stop()
        python.orthanc.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="studies, comma-separated")
    parser.add_argument("--turns", type=int, default=TURNS, help="timed turns per side")
    parser.add_argument(
        "--keep", type=Path, help="an empty folder to keep both Orthancs' data in (for profiling)"
    )
    arguments = parser.parse_args(argv)
    sizes = [int(size) for size in arguments.sizes.split(",")]
    if arguments.keep:
        arguments.keep.mkdir(parents=True, exist_ok=True)
        report(run(sizes, arguments.turns, arguments.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="dicomweb-scale-") as workdir:
            report(run(sizes, arguments.turns, Path(workdir)))


def report(lines: Iterator[str]) -> None:
    for line in lines:
        print(line, flush=True)


if __name__ == "__main__":
    main()
