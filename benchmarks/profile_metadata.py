"""Profile DICOM JSON conversion and WADO-RS metadata (this plugin beside the official one).

    .venv/bin/python -m benchmarks.profile_metadata [--plugin-dir DIR] [--repeat N]

Starts Orthancs on temporary storage, stores the benchmark's 300-slice CT series
(`benchmarks/dataset.py`) and prints medians of:
- the conversion of one instance's `/instances/{id}/tags` to DICOM JSON, in this process;
- instance metadata and uncached series metadata on this plugin (metadata cache disabled);
- the build of a series' cache entry (`update-dicomweb-cache`);
- instance and series metadata on the official plugin.
`--plugin-dir` names another copy of the plugin (a folder holding `orthanc_dicomweb_plugin.py`
and the package), e.g. a snapshot taken before a change, to compare before and after.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orthanc_dicomweb import dicom_json
from orthanc_dicomweb.metadata_cache import InstanceMetadata
from orthanc_dicomweb.config import Configuration
from tests.harness import Orthanc

from .dataset import BenchData, prepare

DICOMWEB = "/dicom-web"


def median_ms(action: Callable[[], Any], repeat: int) -> float:
    """The median duration of `action` in milliseconds, after one warm-up call."""
    action()
    durations = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        durations.append(time.perf_counter() - start)
    return 1000 * statistics.median(durations)


def started(workdir: Path, overrides: dict[str, Any], official: bool, data: BenchData) -> Orthanc:
    orthanc = Orthanc(workdir, overrides, official=official).start()
    orthanc.upload(data.ct_files)
    return orthanc


def conversion_ms(orthanc: Orthanc, data: BenchData, repeat: int) -> float:
    """One instance's conversion from the core's tags to compact DICOM JSON, in this process."""
    found = orthanc.post("/tools/lookup", data=data.middle_instance_uid).json()
    instance_id = found[0]["ID"]
    tags = orthanc.get(f"/instances/{instance_id}/tags").json()
    metadata = InstanceMetadata(Configuration(), core=None)  # type: ignore[arg-type]
    return median_ms(
        lambda: dicom_json.encode_json(metadata.dataset_from_tags(instance_id, tags)), repeat
    )


def metadata_ms(orthanc: Orthanc, data: BenchData, repeat: int) -> dict[str, float]:
    series = f"{DICOMWEB}/studies/{data.ct_study_uid}/series/{data.ct_series_uid}"
    instance = f"{series}/instances/{data.middle_instance_uid}"

    def get(path: str) -> None:
        orthanc.get(path + "/metadata").raise_for_status()

    return {
        "instance metadata": median_ms(lambda: get(instance), repeat * 5),
        "series metadata": median_ms(lambda: get(series), repeat),
    }


def cache_build_ms(orthanc: Orthanc, data: BenchData, repeat: int) -> float:
    study_id = orthanc.post("/tools/lookup", data=data.ct_study_uid).json()[0]["ID"]
    path = f"{DICOMWEB}/studies/{study_id}/update-dicomweb-cache"
    return median_ms(lambda: orthanc.post(path).raise_for_status(), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin-dir", type=Path, help="another copy of the plugin")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--skip-official", action="store_true")
    args = parser.parse_args()
    data = prepare()
    overrides: dict[str, Any] = {"DicomWeb": {"EnableMetadataCache": False}}
    if args.plugin_dir:
        overrides["PythonScript"] = str(args.plugin_dir / "orthanc_dicomweb_plugin.py")
    with tempfile.TemporaryDirectory() as workdir:
        python = started(Path(workdir) / "python", overrides, False, data)
        try:
            print(f"conversion of one instance: {conversion_ms(python, data, 200):.3f} ms")
            for name, value in metadata_ms(python, data, args.repeat).items():
                print(f"python {name}: {value:.1f} ms")
            python.config["DicomWeb"]["EnableMetadataCache"] = True
            python.restart()
            print(f"python cache build: {cache_build_ms(python, data, args.repeat):.1f} ms")
        finally:
            python.stop()
        if args.skip_official:
            return
        official = started(Path(workdir) / "official", {}, True, data)
        try:
            for name, value in metadata_ms(official, data, args.repeat).items():
                print(f"official {name}: {value:.1f} ms")
        finally:
            official.stop()


if __name__ == "__main__":
    main()
