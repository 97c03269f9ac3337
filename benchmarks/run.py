"""The one benchmark command: `.venv/bin/python -m benchmarks.run [--quick]`.

Starts one Orthanc with this plugin and one with Debian's official plugin (same SQLite and
file storage kind, same configuration otherwise), loads the same data into both, runs every
scenario on one side then the other (never both at once), prints the table, writes
benchmarks/results/latest.json and the "Latest results" section of README.rst.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tests.harness import REPO, Orthanc

from . import dataset, report, scenarios
from .report import Row
from .scenarios import Bench, Side

log = logging.getLogger("benchmarks")

RESULTS = REPO / "benchmarks" / "results" / "latest.json"
DOCUMENT = REPO / "README.rst"


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 repetitions, 5 s load, 100 MB STOW (development)"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not update README.rst")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only the operations whose name holds TEXT (repeatable; implies --no-docs)",
    )
    arguments = parser.parse_args(argv)
    arguments.no_docs = arguments.no_docs or bool(arguments.only)
    return arguments


# Orthanc closes a keep-alive connection idle for about a second (measured: open at 0.8 s,
# closed at 1.2 s); a GET sent on it as it closes gets no answer at all, on either side
# (RemoteDisconnected, seen once a run when a turn of the other side lasted about a second).
# Such a GET is sent again once, on a new connection, as browsers and urllib3 do.
IDLE_CLOSE_RACE = Retry(
    total=1, connect=0, read=1, status=0, other=0, allowed_methods=frozenset({"GET", "HEAD"})
)


def start(workdir: Path, official: bool) -> Side:
    orthanc = Orthanc(workdir / ("official" if official else "python"), official=official).start()
    orthanc.session.mount("http://", HTTPAdapter(max_retries=IDLE_CLOSE_RACE))
    # The harness starts Orthanc verbose, for tests; logging every request would be measured.
    orthanc.put("/tools/log-level", data="default").raise_for_status()
    return Side("official" if official else "python", orthanc)


def run_all(bench: Bench, only: Sequence[str] = ()) -> list[Row]:
    """Every scenario (or those named by `only`) in an order that loads the data first and
    keeps it stable afterwards."""
    rows: list[Row] = []

    def run(group: list[scenarios.Scenario], turns: int = 0) -> None:
        for scenario in group:
            if selected(scenario, only):
                rows.extend(scenarios.run_scenario(bench, scenario, turns))

    run(scenarios.stow_scenarios(), turns=bench.store_repetitions)
    scenarios.ensure_loaded(bench)
    scenarios.wait_until_stable(bench)
    run(scenarios.first_metadata_scenarios())
    run(scenarios.read_scenarios(), turns=bench.repetitions)
    run(scenarios.load_scenarios(bench.load_seconds))
    run(scenarios.memory_stow_scenarios(bench.big_stow_bytes))
    return rows


def selected(scenario: scenarios.Scenario, only: Sequence[str]) -> bool:
    names = [metric.operation for metric in scenario.metrics]
    return not only or any(text in name for text in only for name in names)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def plugin_version(side: Side) -> str:
    answer = side.orthanc.get("/plugins/dicom-web")
    return answer.json().get("Version", "?") if answer.ok else "?"


def machine_info(bench: Bench) -> dict[str, Any]:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "memory_gb": round(pages / 2**30),
        "orthanc": bench.python.orthanc.get("/system").json()["Version"],
        "official_plugin": plugin_version(bench.official),
        "python_plugin": plugin_version(bench.python),
        # Other work on the machine skews both sides: keep the load next to the figures.
        "load_average_at_end": round(os.getloadavg()[0], 1),
    }


def measure_everything(
    quick: bool, workdir: Path, only: Sequence[str] = ()
) -> tuple[list[Row], dict[str, Any]]:
    data = dataset.prepare()
    official = start(workdir, official=True)
    python = start(workdir, official=False)
    try:
        bench = Bench(
            data,
            official,
            python,
            repetitions=3 if quick else 7,
            store_repetitions=1 if quick else 5,
            load_seconds=5 if quick else 20,
            big_stow_bytes=(100 if quick else 500) * 2**20,
        )
        return run_all(bench, only), machine_info(bench)
    finally:
        official.orthanc.stop()
        python.orthanc.stop()


def publish(
    rows: list[Row], machine: dict[str, Any], started: str, quick: bool, docs: bool
) -> None:
    print(report.text_table(rows))
    for note in report.notes_of(rows):
        print("note:", note)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report.to_json(rows, machine, started, quick), indent=1))
    print(f"written {RESULTS.relative_to(REPO)}")
    if docs:
        section = report.results_section(rows, machine, started, quick)
        DOCUMENT.write_text(
            report.replace_section(DOCUMENT.read_text(), report.RESULTS_SECTION, section)
        )
        print(f"updated {DOCUMENT.relative_to(REPO)}")


def main(argv: Sequence[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    started = datetime.datetime.now().astimezone().isoformat(timespec="minutes")
    with tempfile.TemporaryDirectory(prefix="dicomweb-bench-") as workdir:
        rows, machine = measure_everything(arguments.quick, Path(workdir), arguments.only)
    publish(rows, machine, started, arguments.quick, not arguments.no_docs)


if __name__ == "__main__":
    main()
