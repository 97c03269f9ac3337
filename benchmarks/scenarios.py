"""The operations timed on both plugins, in the order they run, and their targets.

Each scenario measures one or more figures on a `Side` (one Orthanc); the runner turns them
into report rows. A route that answers 404/405/501 makes the figure "not available" instead of
stopping the run; any other wrong answer is reported the same way with its reason.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote

import requests

from orthanc_dicomweb.http.multipart import encode_multipart, multipart_content_type, new_boundary
from tests.harness import Orthanc

from . import client, measure
from .dataset import CT_SLICES, BenchData, big_instances
from .report import Metric, Row, at_most, faster, near_core

log = logging.getLogger(__name__)

DICOMWEB = "/dicom-web"
NOT_AVAILABLE = (404, 405, 501)
DICOM_JSON = {"Accept": "application/dicom+json"}
EXPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
CT_BATCH = 50
SMALL_BATCH = 10  # the official client's default StowMaxInstances
TIMEOUT = 600
MB = 1_000_000


class Unavailable(Exception):
    """The route is not served on this side (yet)."""


class WrongAnswer(Exception):
    """The side answered, but not what the scenario expects."""


@dataclass(frozen=True)
class Side:
    """One Orthanc under test: "official" or "python"."""

    name: str
    orthanc: Orthanc

    @property
    def pid(self) -> int:
        assert self.orthanc.process is not None
        return self.orthanc.process.pid

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request that must succeed; 404/405/501 raise `Unavailable`."""
        response = self.orthanc.session.request(
            method, self.orthanc.url + path, timeout=TIMEOUT, **kwargs
        )
        return checked(response)

    def find(self, query: dict[str, Any]) -> list[Any]:
        return self.request("POST", "/tools/find", json={**query, "Expand": True}).json()

    def orthanc_id(self, uid: str) -> str | None:
        matches = self.request("POST", "/tools/lookup", data=uid).json()
        return matches[0]["ID"] if matches else None

    def delete_study(self, study_uid: str) -> None:
        study = self.orthanc_id(study_uid)
        if study is not None:
            self.request("DELETE", f"/studies/{study}")

    def delete_patients(self, patient_id_pattern: str) -> None:
        found = self.request(
            "POST",
            "/tools/find",
            json={"Level": "Patient", "Query": {"PatientID": patient_id_pattern}},
        ).json()
        if found:
            self.request("POST", "/tools/bulk-delete", json={"Resources": found})

    def idle(self) -> None:
        measure.wait_until_idle(self.pid)


def checked(response: requests.Response) -> requests.Response:
    if response.status_code in NOT_AVAILABLE:
        raise Unavailable(f"not available (HTTP {response.status_code})")
    if not response.ok:
        raise WrongAnswer(f"HTTP {response.status_code}: {response.text[:200]!r}")
    return response


@dataclass
class Bench:
    """The two sides, the data set and the run's sizes."""

    data: BenchData
    official: Side
    python: Side
    repetitions: int
    store_repetitions: int
    load_seconds: float
    big_stow_bytes: int

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.official, self.python

    def idle(self) -> None:
        """Wait until both Orthancs are idle: one side's background work (this plugin caches
        series once stable, 1 s after their last instance here) must not run during the other
        side's measurement."""
        for side in self.sides:
            side.idle()

    @cached_property
    def ct_payloads(self) -> list[bytes]:
        return [path.read_bytes() for path in self.data.ct_files]

    @cached_property
    def small_payloads(self) -> list[bytes]:
        return [path.read_bytes() for path in self.data.small_files]

    @property
    def series_path(self) -> str:
        data = self.data
        return f"{DICOMWEB}/studies/{data.ct_study_uid}/series/{data.ct_series_uid}"

    @property
    def instance_path(self) -> str:
        return f"{self.series_path}/instances/{self.data.middle_instance_uid}"


Measure = Callable[[Bench, Side], Sequence[float]]


@dataclass(frozen=True)
class Scenario:
    """Figures measured on both sides, and optionally the core's own on the Python side."""

    metrics: tuple[Metric, ...]
    measure: Measure
    core: Measure | None = None


# --- STOW-RS ------------------------------------------------------------------------------


def stow_requests(payloads: Sequence[bytes], batch: int) -> list[tuple[bytes, str]]:
    """Multipart bodies of `batch` instances each, with their Content-Type."""
    requests_ = []
    for start in range(0, len(payloads), batch):
        boundary = new_boundary()
        parts = [
            (payload, "application/dicom", None) for payload in payloads[start : start + batch]
        ]
        body = encode_multipart(parts, boundary)
        requests_.append((body, multipart_content_type("application/dicom", boundary)))
    return requests_


def store_instances(side: Side, bodies: Sequence[tuple[bytes, str]]) -> None:
    """Store Instances (STOW-RS), refusing any answer but 200."""
    for body, content_type in bodies:
        headers = {"Content-Type": content_type, **DICOM_JSON}
        response = side.request("POST", f"{DICOMWEB}/studies", data=body, headers=headers)
        if response.status_code != 200:
            raise WrongAnswer(stow_failure(side, response))


def stow_failure(side: Side, response: requests.Response) -> str:
    """Why a STOW-RS request was not all stored: the failure reasons of the answer, and what
    the server logged about it (the answer carries codes only)."""
    try:
        failed = response.json().get("00081198", {}).get("Value", [])
        reasons = [item.get("00081197", {}).get("Value", ["?"])[0] for item in failed]
    except (ValueError, AttributeError):
        reasons = [response.text[:200]]
    logged = [line for line in side.orthanc.log_text().splitlines() if "not stored" in line]
    return f"STOW-RS answered {response.status_code}, failure reasons {reasons}; log: {logged[-3:]}"


def post_instances(side: Side, payloads: Sequence[bytes]) -> None:
    """The core's own upload, one file per request."""
    for payload in payloads:
        side.request("POST", "/instances", data=payload)


def store_rate(
    bench: Bench,
    side: Side,
    payloads: Sequence[bytes],
    store: Callable[[], None],
    delete: Callable[[], None],
) -> tuple[float, float]:
    """Instances/s and MB/s of `store`, median of the repetitions, each on an emptied Orthanc."""
    times = []
    for _ in range(bench.store_repetitions):
        delete()
        bench.idle()
        times.append(measure.timed(store))
    seconds = statistics.median(times)
    return len(payloads) / seconds, sum(map(len, payloads)) / seconds / MB


def stow_ct(bench: Bench, side: Side) -> tuple[float, float]:
    bodies = stow_requests(bench.ct_payloads, CT_BATCH)
    return store_rate(
        bench,
        side,
        bench.ct_payloads,
        lambda: store_instances(side, bodies),
        lambda: side.delete_study(bench.data.ct_study_uid),
    )


def core_post_ct(bench: Bench, side: Side) -> tuple[float, float]:
    return store_rate(
        bench,
        side,
        bench.ct_payloads,
        lambda: post_instances(side, bench.ct_payloads),
        lambda: side.delete_study(bench.data.ct_study_uid),
    )


def stow_small(bench: Bench, side: Side) -> tuple[float, float]:
    bodies = stow_requests(bench.small_payloads, SMALL_BATCH)
    return store_rate(
        bench,
        side,
        bench.small_payloads,
        lambda: store_instances(side, bodies),
        lambda: side.delete_patients("SMALL-*"),
    )


def core_post_small(bench: Bench, side: Side) -> tuple[float, float]:
    return store_rate(
        bench,
        side,
        bench.small_payloads,
        lambda: post_instances(side, bench.small_payloads),
        lambda: side.delete_patients("SMALL-*"),
    )


def ensure_loaded(bench: Bench) -> None:
    """Both sides hold the whole data set, whatever the STOW scenarios managed to store."""
    expected = len(bench.ct_payloads) + len(bench.small_payloads)
    for side in bench.sides:
        count = side.request("GET", "/statistics").json()["CountInstances"]
        if count < expected:
            log.warning(
                "%s holds %d of %d instances: uploading through the core",
                side.name,
                count,
                expected,
            )
            post_instances(side, bench.ct_payloads + bench.small_payloads)


def wait_until_stable(bench: Bench) -> None:
    """The big series is stable on both sides and their background work is over."""
    for side in bench.sides:
        series = side.request("POST", "/tools/lookup", data=bench.data.ct_series_uid).json()
        path = f"/series/{series[0]['ID']}"
        while not side.request("GET", path).json()["IsStable"]:
            time.sleep(0.2)
        bench.idle()


# --- QIDO-RS ------------------------------------------------------------------------------


def check_count(found: int, expected: int) -> None:
    if found != expected:
        raise WrongAnswer(f"{found} matches where the core finds {expected}")


def search(path: str, find: Callable[[Bench], dict[str, Any]]) -> tuple[Measure, Measure]:
    """A QIDO-RS query and the core's `/tools/find` for the same matches: two measures (ms)."""

    def qido(bench: Bench, side: Side) -> tuple[float]:
        url = DICOMWEB + path.format(study=bench.data.ct_study_uid, series=bench.data.ct_series_uid)
        expected = len(side.find(find(bench)))

        def query() -> Callable[[], None]:
            response = side.request("GET", url, headers=DICOM_JSON)
            return lambda: check_count(len(response.json()), expected)

        bench.idle()
        return (1000 * measure.median_time(query, bench.repetitions),)

    def core_find(bench: Bench, side: Side) -> tuple[float]:
        query = {**find(bench), "Expand": True}

        def core_answer() -> None:
            side.request("POST", "/tools/find", json=query)

        bench.idle()
        return (1000 * measure.median_time(core_answer, bench.repetitions),)

    return qido, core_find


QIDO_TARGETS = (faster(5), near_core(1 / 1.5, "<=1.5x core time"))


def qido_scenario(operation: str, path: str, find: Callable[[Bench], dict[str, Any]]) -> Scenario:
    qido, core_find = search(path, find)
    return Scenario((Metric(operation, "ms", targets=QIDO_TARGETS),), qido, core_find)


# --- WADO-RS metadata, retrieve, frames, rendered; WADO-URI ---------------------------------


def get_timer(
    path: Callable[[Bench], str], accept: str, check: Callable[[requests.Response], None]
) -> Callable[[Bench, Side], Callable[[], object]]:
    """For a bench and side, an action doing one checked GET."""

    def prepare(bench: Bench, side: Side) -> Callable[[], object]:
        url = path(bench)

        def get() -> Callable[[], None]:
            response = side.request("GET", url, headers={"Accept": accept})
            return lambda: check(response)  # checked after the clock stops

        return get

    return prepare


def json_items(count: int) -> Callable[[requests.Response], None]:
    def check(response: requests.Response) -> None:
        found = len(response.json())
        if found != count:
            raise WrongAnswer(f"{found} datasets instead of {count}")

    return check


def content_type(expected: str) -> Callable[[requests.Response], None]:
    def check(response: requests.Response) -> None:
        if (
            not response.headers.get("Content-Type", "").startswith(expected)
            or not response.content
        ):
            raise WrongAnswer(f"answered {response.headers.get('Content-Type')!r}")

    return check


def repeated_ms(prepare: Callable[[Bench, Side], Callable[[], object]]) -> Measure:
    def run(bench: Bench, side: Side) -> tuple[float]:
        action = prepare(bench, side)
        bench.idle()
        return (1000 * measure.median_time(action, bench.repetitions),)

    return run


def first_ms(prepare: Callable[[Bench, Side], Callable[[], object]]) -> Measure:
    """One untried call only: what a viewer meets first."""

    def run(bench: Bench, side: Side) -> tuple[float]:
        action = prepare(bench, side)
        return (1000 * measure.timed(action),)

    return run


SERIES_METADATA = get_timer(
    lambda bench: bench.series_path + "/metadata", "application/dicom+json", json_items(CT_SLICES)
)
STUDY_METADATA = get_timer(
    lambda bench: f"{DICOMWEB}/studies/{bench.data.ct_study_uid}/metadata",
    "application/dicom+json",
    json_items(CT_SLICES),
)
INSTANCE_METADATA = get_timer(
    lambda bench: bench.instance_path + "/metadata", "application/dicom+json", json_items(1)
)
RAW_FRAME = get_timer(
    lambda bench: bench.instance_path + "/frames/1",
    'multipart/related; type="application/octet-stream"',
    content_type("multipart/related"),
)
RENDERED_FRAME = get_timer(
    lambda bench: bench.instance_path + "/frames/1/rendered",
    "image/jpeg",
    content_type("image/jpeg"),
)
THUMBNAIL = get_timer(
    lambda bench: bench.instance_path + "/thumbnail", "image/jpeg", content_type("image/jpeg")
)


def wado_uri_path(bench: Bench) -> str:
    data = bench.data
    return (
        f"/wado?requestType=WADO&studyUID={data.ct_study_uid}&seriesUID={data.ct_series_uid}"
        f"&objectUID={data.middle_instance_uid}&contentType={quote('image/jpeg')}"
    )


# Official 1.7 answers PNG to contentType=image/jpeg: any image is accepted here (see docs).
WADO_URI_JPEG = get_timer(wado_uri_path, "image/jpeg", content_type("image/"))


def retrieve_accept(transfer_syntax: str) -> str:
    return f'multipart/related; type="application/dicom"; transfer-syntax={transfer_syntax}'


def checked_series(side: Side, url: str, transfer_syntax: str) -> int:
    """Retrieve Series (WADO-RS) read by a Python client, untimed: every instance must be in
    the answer, and the multipart closed; returns the bytes received."""
    response = side.orthanc.session.get(
        side.orthanc.url + url,
        headers={"Accept": retrieve_accept(transfer_syntax)},
        timeout=TIMEOUT,
    )
    checked(response)
    boundary = response.headers["Content-Type"].split("boundary=", 1)[1].split(";")[0].strip('"')
    delimiter = b"--" + boundary.encode()
    parts = response.content.count(delimiter + b"\r\n")
    if parts != CT_SLICES or not response.content.rstrip().endswith(delimiter + b"--"):
        raise WrongAnswer(f"{parts} parts instead of {CT_SLICES}, or no closing delimiter")
    return len(response.content)


def retrieve_series(side: Side, url: str, transfer_syntax: str) -> client.Transfer:
    """Retrieve Series (WADO-RS) as a client sees it (see client.py): one curl download."""
    headers = {"Accept": retrieve_accept(transfer_syntax)}
    (transfer,) = client.fetch([side.orthanc.url + url], headers, TIMEOUT)
    if transfer.status != 200 or transfer.size < CT_SLICES * 100_000:
        raise WrongAnswer(f"HTTP {transfer.status}, {transfer.size} bytes for the series")
    return transfer


def retrieve_rate(transfer_syntax: str) -> Measure:
    """MB/s of the answer (transcoded answers are larger than the stored files), from the
    request to its last byte; the answer is checked whole once, untimed, as the warm-up."""

    def run(bench: Bench, side: Side) -> tuple[float]:
        checked_series(side, bench.series_path, transfer_syntax)
        bench.idle()
        rates = [
            (transfer := retrieve_series(side, bench.series_path, transfer_syntax)).size
            / transfer.seconds
            / MB
            for _ in range(bench.repetitions)
        ]
        return (statistics.median(rates),)

    return run


def streaming_memory(bench: Bench, side: Side) -> tuple[float]:
    bench.idle()
    with measure.MemorySampler(side.pid) as sampler:
        retrieve_series(side, bench.series_path, "*")
    return (sampler.growth_mb,)


def big_stow_memory(bench: Bench, side: Side) -> tuple[float]:
    """Peak resident growth while one STOW-RS request of `big_stow_bytes` is received."""
    payloads = list(big_instances(bench.big_stow_bytes))
    ((body, content_type_),) = stow_requests(payloads, len(payloads))
    side.delete_patients("BIG-BENCH")
    bench.idle()
    try:
        with measure.MemorySampler(side.pid) as sampler:
            store_instances(side, [(body, content_type_)])
    finally:
        side.delete_patients("BIG-BENCH")
    return (sampler.growth_mb,)


# --- Concurrency ---------------------------------------------------------------------------


def mixed_requests(bench: Bench) -> list[tuple[str, str]]:
    """The concurrent clients' menu: (URL, Accept) of QIDO and metadata requests."""
    data = bench.data
    small = data.small_studies
    menu = [
        (f"{DICOMWEB}/studies?PatientName={letter}*", "application/dicom+json")
        for letter in "MSBKA"
    ]
    menu += [(f"{DICOMWEB}/studies?StudyDate=20050101-20121231&limit=20", "application/dicom+json")]
    menu += [
        (f"{DICOMWEB}/studies/{study.study_uid}/metadata", "application/dicom+json")
        for study in small[:20]
    ]
    menu += [
        (
            f"{DICOMWEB}/studies/{s.study_uid}/series/{s.series_uid}/metadata",
            "application/dicom+json",
        )
        for s in small[20:40]
    ]
    menu += [(bench.series_path + "/metadata", "application/dicom+json")] * 4
    return menu


def concurrent_load(bench: Bench, side: Side) -> tuple[float, float, float, float]:
    """8 clients picking requests from the same seeded menu on both sides."""
    menu = mixed_requests(bench)
    for url, accept in dict.fromkeys(menu):
        side.request("GET", url, headers={"Accept": accept})  # unavailable routes stop here

    def client(seed: int) -> Callable[[int], bool]:
        session = requests.Session()
        order = random.Random(seed)

        def one(_count: int) -> bool:
            url, accept = order.choice(menu)
            try:
                response = session.get(
                    side.orthanc.url + url, headers={"Accept": accept}, timeout=60
                )
            except requests.RequestException:
                return False
            return response.status_code == 200

        return one

    bench.idle()
    result = measure.run_load([client(seed) for seed in range(8)], bench.load_seconds)
    return (
        result.requests_per_second,
        result.latency_ms(0.5),
        result.latency_ms(0.95),
        float(result.errors),
    )


# --- The scenarios, in running order -------------------------------------------------------


def stow_scenarios() -> list[Scenario]:
    stow_targets = (faster(1.2), near_core(0.9, ">=90% core rate"))
    return [
        Scenario(
            (
                Metric(
                    "STOW-RS CT series (300 RLE slices), 50/request", "inst/s", True, stow_targets
                ),
                Metric("STOW-RS CT series (300 RLE slices), 50/request", "MB/s", True),
            ),
            stow_ct,
            core_post_ct,
        ),
        Scenario(
            (
                Metric(
                    "STOW-RS 400 small studies (800 inst), 10/request", "inst/s", True, stow_targets
                ),
                Metric("STOW-RS 400 small studies (800 inst), 10/request", "MB/s", True),
            ),
            stow_small,
            core_post_small,
        ),
    ]


def first_metadata_scenarios() -> list[Scenario]:
    return [
        Scenario(
            (
                Metric(
                    "Series metadata (300 inst), first call once stable", "ms", targets=(faster(2),)
                ),
            ),
            first_ms(SERIES_METADATA),
        )
    ]


def read_scenarios() -> list[Scenario]:
    return [
        qido_scenario("QIDO-RS all studies", "/studies", lambda b: {"Level": "Study", "Query": {}}),
        qido_scenario(
            "QIDO-RS studies, PatientName=M*",
            "/studies?PatientName=M*",
            lambda b: {"Level": "Study", "Query": {"PatientName": "M*"}},
        ),
        qido_scenario(
            "QIDO-RS studies, StudyDate range, limit=25",
            "/studies?StudyDate=20000101-20101231&limit=25",
            lambda b: {"Level": "Study", "Query": {"StudyDate": "20000101-20101231"}, "Limit": 25},
        ),
        qido_scenario(
            "QIDO-RS series, Modality=MR",
            "/series?Modality=MR",
            lambda b: {"Level": "Series", "Query": {"Modality": "MR"}},
        ),
        qido_scenario(
            "QIDO-RS instances of the CT series",
            "/studies/{study}/series/{series}/instances",
            lambda b: {
                "Level": "Instance",
                "Query": {
                    "StudyInstanceUID": b.data.ct_study_uid,
                    "SeriesInstanceUID": b.data.ct_series_uid,
                },
            },
        ),
        Scenario(
            (Metric("Series metadata (300 inst), repeated", "ms", targets=(faster(10),)),),
            repeated_ms(SERIES_METADATA),
        ),
        Scenario(
            (Metric("Study metadata (300 inst), repeated", "ms", targets=(faster(10),)),),
            repeated_ms(STUDY_METADATA),
        ),
        Scenario(
            (Metric("Instance metadata", "ms", targets=(faster(1),)),),
            repeated_ms(INSTANCE_METADATA),
        ),
        Scenario(
            (
                Metric(
                    "Peak RSS growth, retrieving the CT series",
                    "MB",
                    targets=(at_most(100, "<100 MB"),),
                ),
            ),
            streaming_memory,
        ),
        Scenario(
            (Metric("Retrieve CT series, transfer-syntax=*", "MB/s", True, (faster(0.9),)),),
            retrieve_rate("*"),
        ),
        Scenario(
            (Metric("Retrieve CT series, to Explicit VR LE", "MB/s", True, (faster(0.9),)),),
            retrieve_rate(EXPLICIT_LITTLE_ENDIAN),
        ),
        Scenario(
            (Metric("One frame, uncompressed", "ms", targets=(faster(1),)),), repeated_ms(RAW_FRAME)
        ),
        Scenario(
            (Metric("One rendered JPEG frame", "ms", targets=(faster(1),)),),
            repeated_ms(RENDERED_FRAME),
        ),
        Scenario(
            (Metric("Thumbnail of an instance", "ms", targets=(faster(1),)),),
            repeated_ms(THUMBNAIL),
        ),
        Scenario(
            (Metric("WADO-URI JPEG", "ms", targets=(faster(1),)),), repeated_ms(WADO_URI_JPEG)
        ),
    ]


def load_scenarios(load_seconds: float) -> list[Scenario]:
    title = f"8 clients, QIDO + metadata, {load_seconds:g} s"
    return [
        Scenario(
            (
                Metric(title + ": throughput", "req/s", True, (faster(2),)),
                Metric(title + ": p50 latency", "ms"),
                Metric(title + ": p95 latency", "ms", targets=(faster(1),)),
                Metric(title + ": errors", "count", targets=(at_most(0, "none"),)),
            ),
            concurrent_load,
        )
    ]


def memory_stow_scenarios(body_bytes: int) -> list[Scenario]:
    body_mb = body_bytes / 2**20
    limit = at_most(2.2 * body_mb, f"<={2.2 * body_mb:.0f} MB (2.2x body)")
    return [
        Scenario(
            (Metric(f"Peak RSS growth, one {body_mb:.0f} MB STOW-RS", "MB", targets=(limit,)),),
            big_stow_memory,
        )
    ]


# --- Running -------------------------------------------------------------------------------


def attempt(
    measure_: Measure, bench: Bench, side: Side, label: str, notes: list[str]
) -> Sequence[float] | None:
    """The figures, or None with a note saying why they are missing."""
    try:
        return measure_(bench, side)
    except Unavailable as reason:
        notes.append(f"{label}: {reason}")
    except (WrongAnswer, requests.RequestException) as reason:
        notes.append(f"{label}: failed, {reason}")
    return None


def figure(values: Sequence[float] | None, index: int) -> float | None:
    return None if values is None else values[index]


def measure_sides(
    bench: Bench, scenario: Scenario, notes: list[str]
) -> dict[str, Sequence[float] | None]:
    """Each side's figures, one side after the other."""
    return {
        side.name: attempt(scenario.measure, bench, side, side.name, notes) for side in bench.sides
    }


def measure_sides_in_turns(
    bench: Bench, scenario: Scenario, notes: list[str], turns: int
) -> dict[str, Sequence[float] | None]:
    """Each side's figures, the sides taking `turns` turns (A B B A ...), one repetition a turn:
    a slow spell of the shared machine then weighs on both sides alike. Medians of the turns."""
    one = dataclasses.replace(bench, repetitions=1, store_repetitions=1)
    runs_of: dict[str, list[Sequence[float]] | None] = {side.name: [] for side in bench.sides}
    for number in range(turns):
        for side in bench.sides if number % 2 == 0 else bench.sides[::-1]:
            runs = runs_of[side.name]
            if runs is not None:
                figures = attempt(scenario.measure, one, side, side.name, notes)
                runs_of[side.name] = None if figures is None else [*runs, figures]
    return {name: None if runs is None else medians(runs) for name, runs in runs_of.items()}


def medians(runs: Sequence[Sequence[float]]) -> list[float]:
    """The median of each figure over several runs of a measure."""
    return [statistics.median(values) for values in zip(*runs, strict=True)]


def run_scenario(bench: Bench, scenario: Scenario, turns: int = 0) -> list[Row]:
    """The scenario's rows; the sides take `turns` turns, or (0) run one after the other."""
    notes: list[str] = []
    if turns:
        found = measure_sides_in_turns(bench, scenario, notes, turns)
    else:
        found = measure_sides(bench, scenario, notes)
    core = attempt(scenario.core, bench, bench.python, "core", notes) if scenario.core else None
    rows = []
    for index, metric in enumerate(scenario.metrics):
        official, python = figure(found["official"], index), figure(found["python"], index)
        rows.append(
            Row.of(metric, official, python, figure(core, index), notes if index == 0 else ())
        )
        log.warning(
            "%s: official %s, python %s %s", metric.operation, official, python, metric.unit
        )
    return rows
