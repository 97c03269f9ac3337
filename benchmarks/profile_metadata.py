"""Profile WADO-RS metadata: this plugin (and optionally an older copy) beside the official one.

    .venv/bin/python -m benchmarks.profile_metadata [--before DIR] [--rounds N]

Starts one Orthanc per side on temporary storage, stores the benchmark's 300-slice CT series
(`benchmarks/dataset.py`) in each, then measures the sides in turns (round after round, so
that the noise of a shared machine hits them alike) and prints medians of instance, series and
study metadata: "cached" with the metadata cache, "uncached" without it, "official" on the
official plugin; for "cached", also the time of building the study's entries and that of the
first series request after it (which prepares the answer again). Requests accept gzip, as
browsers and `requests` do, except "series, identity" (a client that does not). It also
prints the CPU time of converting one instance's tags to DICOM JSON in this process.
`--before` names another copy of the plugin (a folder holding `orthanc_dicomweb_plugin.py`
and its package, e.g. a snapshot taken before a change), measured with its cache on, to
compare before and after.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.dicom import json_model as dicom_json
from orthanc_dicomweb.services.metadata.cache import InstanceMetadata
from tests.harness import Orthanc

from .dataset import BenchData, prepare

DICOMWEB = "/dicom-web"
UNCACHED = {"DicomWeb": {"EnableMetadataCache": False}}
INSTANCE_CALLS = 10  # instance metadata is timed over this many calls


def elapsed_ms(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return 1000 * (time.perf_counter() - start)


def conversion_cpu_ms(orthanc: Orthanc, data: BenchData, repeat: int = 300) -> float:
    """CPU time of one instance's conversion from the core's tags to compact DICOM JSON."""
    instance_id = orthanc.post("/tools/lookup", data=data.middle_instance_uid).json()[0]["ID"]
    tags = orthanc.get(f"/instances/{instance_id}/tags?short").json()
    metadata = InstanceMetadata(Configuration(), core=None)  # type: ignore[arg-type]
    start = time.process_time()
    for _ in range(repeat):
        dicom_json.encode_json(metadata.dataset_from_tags(instance_id, tags))
    return 1000 * (time.process_time() - start) / repeat


def timed_requests(orthanc: Orthanc, data: BenchData) -> dict[str, Callable[[], Any]]:
    study = f"{DICOMWEB}/studies/{data.ct_study_uid}"
    series = f"{study}/series/{data.ct_series_uid}"
    instance = f"{series}/instances/{data.middle_instance_uid}"

    def get(path: str, encoding: str = "gzip, deflate") -> None:
        answer = orthanc.get(path + "/metadata", headers={"Accept-Encoding": encoding})
        answer.raise_for_status()

    return {
        "instance metadata": lambda: [get(instance) for _ in range(INSTANCE_CALLS)],
        "series metadata": lambda: get(series),
        "series, identity": lambda: get(series, "identity"),
        "study metadata": lambda: get(study),
    }


def cache_build(orthanc: Orthanc, data: BenchData) -> Callable[[], Any]:
    study_id = orthanc.post("/tools/lookup", data=data.ct_study_uid).json()[0]["ID"]
    return lambda: orthanc.post(f"/studies/{study_id}/update-dicomweb-cache").raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="an older copy of the plugin")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    data = prepare()
    sides: dict[str, tuple[dict[str, Any], bool]] = {"cached": ({}, False)}
    sides["uncached"] = (UNCACHED, False)
    if args.before:
        sides["before"] = ({"PythonScript": str(args.before / "orthanc_dicomweb_plugin.py")}, False)
    sides["official"] = ({}, True)
    with tempfile.TemporaryDirectory() as workdir:
        running = {
            name: Orthanc(Path(workdir) / name, overrides, official=official).start()
            for name, (overrides, official) in sides.items()
        }
        try:
            for orthanc in running.values():
                orthanc.upload(data.ct_files)
            print(f"conversion CPU time: {conversion_cpu_ms(running['uncached'], data):.3f} ms")
            actions = {name: timed_requests(o, data) for name, o in running.items()}
            times: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds + 1):  # the first round warms up
                for side, requests in actions.items():
                    for what, action in requests.items():
                        times.setdefault((side, what), []).append(elapsed_ms(action))
            # Rebuilding drops the prepared answers: the next request prepares them again.
            build, first_request = cache_build(running["cached"], data), actions["cached"]
            for _ in range(args.rounds + 1):
                times.setdefault(("cached", "cache build"), []).append(elapsed_ms(build))
                after = elapsed_ms(first_request["series metadata"])
                times.setdefault(("cached", "series, 1st after"), []).append(after)
            for (side, what), values in sorted(times.items(), key=lambda item: item[0][::-1]):
                per_call = INSTANCE_CALLS if what == "instance metadata" else 1
                median = statistics.median(values[1:]) / per_call
                print(f"{what:18} {side:9} {median:8.1f} ms")
        finally:
            for orthanc in running.values():
                orthanc.stop()


if __name__ == "__main__":
    main()
