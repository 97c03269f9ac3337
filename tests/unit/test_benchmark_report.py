"""The benchmark's pure parts: ratios, targets, tables, JSON, the results section, and the
measuring tools on this very process."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from benchmarks.measure import LoadResult, MemorySampler, run_load
from benchmarks.report import (
    Metric,
    Row,
    advantage,
    at_most,
    faster,
    near_core,
    percentile,
    replace_section,
    results_section,
    rst_table,
    text_table,
    to_json,
)

QIDO = Metric("QIDO-RS all studies", "ms", targets=(faster(5), near_core(1 / 1.5, "<=1.5x core")))
STOW = Metric("STOW-RS", "inst/s", True, (faster(1.2), near_core(0.9, ">=90% core")))
MACHINE = {"cpu": "Test CPU", "nproc": 2, "memory_gb": 8, "orthanc": "1.10.1"}


def test_advantage_of_a_time_is_baseline_over_python() -> None:
    assert advantage(100.0, 900.0, higher_is_better=False) == 9.0


def test_advantage_of_a_rate_is_python_over_baseline() -> None:
    assert advantage(60.0, 50.0, higher_is_better=True) == pytest.approx(1.2)


def test_advantage_needs_both_figures() -> None:
    assert advantage(None, 3.0, False) is None
    assert advantage(3.0, None, False) is None


def test_advantage_over_a_zero_figure() -> None:
    assert advantage(0.0, 5.0, higher_is_better=False) == math.inf
    assert advantage(0.0, 0.0, higher_is_better=False) is None


def test_row_meets_every_target() -> None:
    row = Row.of(QIDO, official=900.0, python=40.0, core=34.0)
    assert row.ratio == pytest.approx(22.5)
    assert row.met is True


def test_row_misses_the_core_target_although_far_faster_than_official() -> None:
    row = Row.of(QIDO, official=900.0, python=60.0, core=34.0)
    assert row.met is False


def test_rate_targets_use_the_core_as_a_ceiling() -> None:
    assert Row.of(STOW, official=50.0, python=71.0, core=78.0).met is True
    assert Row.of(STOW, official=50.0, python=65.0, core=78.0).met is False


def test_row_without_python_figure_is_undecided() -> None:
    row = Row.of(QIDO, official=900.0, python=None, core=34.0, notes=["python: not available"])
    assert row.ratio is None
    assert row.met is None


def test_row_without_targets_is_undecided() -> None:
    assert Row.of(Metric("p50", "ms"), 10.0, 5.0).met is None


def test_absolute_limit_ignores_the_official_figure() -> None:
    memory = Metric("RSS growth", "MB", targets=(at_most(100, "<100 MB"),))
    assert Row.of(memory, official=5.0, python=80.0).met is True
    assert Row.of(memory, official=None, python=120.0).met is False


def test_limit_of_zero_errors() -> None:
    errors = Metric("errors", "count", targets=(at_most(0, "none"),))
    assert Row.of(errors, 0.0, 0.0).met is True
    assert Row.of(errors, 0.0, 1.0).met is False


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([7.0], 0.95) == 7.0


def test_text_table_lists_figures_ratio_and_verdict() -> None:
    rows = [
        Row.of(QIDO, 925.0, 40.0, 34.0),
        Row.of(STOW, 51.0, None, 78.0, ["python: not available (HTTP 405)"]),
    ]
    lines = text_table(rows).splitlines()
    assert lines[0].split() == [
        "operation", "unit", "official", "python", "ratio", "core", "target", "met?"
    ]  # fmt: skip
    assert set(lines[1]) <= {"-", " "}
    assert "925" in lines[2] and "40.0" in lines[2] and "23.1x" in lines[2]
    assert lines[2].endswith("yes")
    assert "n/a" in lines[3] and lines[3].endswith("-")


def test_rst_table_is_a_simple_table_with_equal_rules() -> None:
    lines = rst_table([Row.of(QIDO, 925.0, 40.0, 34.0)]).splitlines()
    assert lines[0] == lines[2] == lines[-1]
    assert set(lines[0]) == {"=", " "}
    assert len(lines) == 5


def test_json_is_plain_and_carries_ratio_targets_and_verdict() -> None:
    rows = [Row.of(QIDO, 925.0, 40.0, 34.0, ["a note"])]
    value = json.loads(json.dumps(to_json(rows, MACHINE, "2026-11-24T10:00+00:00", True)))
    row = value["rows"][0]
    assert value["quick"] is True and value["machine"]["nproc"] == 2
    assert row["operation"] == "QIDO-RS all studies"
    assert row["official"] == 925.0 and row["python"] == 40.0 and row["core"] == 34.0
    assert row["ratio"] == pytest.approx(23.125)
    assert row["met"] is True
    assert row["targets"][0] == {"reference": "official", "value": 5, "text": ">=5x official"}
    assert row["notes"] == ["a note"]


def test_results_section_names_date_machine_and_notes() -> None:
    rows = [Row.of(QIDO, 925.0, None, 34.0, ["python: not available (HTTP 404)"])]
    section = results_section(rows, MACHINE, "2026-11-24T10:00+00:00", quick=False)
    assert "2026-11-24T10:00+00:00" in section and "Test CPU" in section
    assert "2 cores" in section
    assert "- QIDO-RS all studies: python: not available (HTTP 404)" in section


DOCUMENT = """Benchmarks
==========

Intro.

Latest results
--------------

old table

Profiling
---------

kept
"""


def test_replace_section_keeps_the_following_sections() -> None:
    replaced = replace_section(DOCUMENT, "Latest results", "new table\n")
    assert "old table" not in replaced
    assert (
        "Latest results\n--------------\n\nnew table\n\nProfiling\n---------\n\nkept\n" in replaced
    )
    assert replaced.startswith("Benchmarks\n==========\n\nIntro.")


def test_replace_section_at_the_end_of_the_document() -> None:
    document = DOCUMENT.split("Profiling")[0].rstrip() + "\n"
    replaced = replace_section(document, "Latest results", "new\n")
    assert replaced.endswith("Latest results\n--------------\n\nnew\n")


def test_replace_section_appends_a_missing_section() -> None:
    replaced = replace_section("Title\n=====\n", "Latest results", "new\n")
    assert replaced.endswith("Title\n=====\n\nLatest results\n--------------\n\nnew\n")


def test_replacing_twice_is_stable() -> None:
    once = replace_section(DOCUMENT, "Latest results", "new table\n")
    assert replace_section(once, "Latest results", "new table\n") == once


def test_load_result_counts_errors_in_the_rate_but_not_in_latencies() -> None:
    result = LoadResult(2.0, latencies=[0.01, 0.02, 0.03, 0.04], errors=2)
    assert result.requests_per_second == 3.0
    assert result.latency_ms(0.5) == pytest.approx(20.0)


def test_run_load_calls_every_client_until_time_is_up() -> None:
    succeeding: list[int] = []
    failing: list[int] = []
    result = run_load([lambda n: succeeding.append(n) or True, lambda n: failing.append(n)], 0.5)
    assert succeeding[:3] == [0, 1, 2] and failing[:1] == [0]
    assert result.errors == len(failing)
    assert len(result.latencies) == len(succeeding)


# A fresh process allocates and touches 64 MB when told to: this test's own process could
# reuse pages that earlier tests left resident, and then show no growth.
ALLOCATING_CHILD = """
import sys
print("ready", flush=True)
sys.stdin.readline()
block = bytearray(64 * 2**20)
block[::4096] = b"x" * len(block[::4096])  # touch every page so it becomes resident
print("allocated", flush=True)
sys.stdin.readline()
"""


def test_memory_sampler_sees_an_allocation_of_a_process() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", ALLOCATING_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == "ready\n"
        with MemorySampler(child.pid) as sampler:
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "allocated\n"
        assert sampler.growth_mb >= 50
    finally:
        child.kill()
        child.wait()


def test_sides_take_turns_and_figures_are_medians_of_the_turns() -> None:
    from benchmarks.scenarios import Bench, Scenario, Side, measure_sides_in_turns

    order: list[str] = []
    values = {"official": iter([3.0, 1.0, 2.0]), "python": iter([5.0, 9.0, 7.0])}

    def measure(bench: Bench, side: Side) -> tuple[float]:
        assert bench.repetitions == bench.store_repetitions == 1
        order.append(side.name)
        return (next(values[side.name]),)

    sides = [Side(name, None) for name in ("official", "python")]  # type: ignore[arg-type]
    bench = Bench(None, sides[0], sides[1], 7, 5, 1.0, 1)  # type: ignore[arg-type]
    found = measure_sides_in_turns(bench, Scenario((), measure), [], turns=3)
    assert order == ["official", "python", "python", "official", "official", "python"]
    assert found == {"official": [2.0], "python": [7.0]}


def test_a_refused_stow_is_reported_with_its_failure_reasons_and_log_lines() -> None:
    import json
    from types import SimpleNamespace

    import requests

    from benchmarks.scenarios import stow_failure

    response = requests.Response()
    response.status_code = 202
    failed = {"00081198": {"vr": "SQ", "Value": [{"00081197": {"vr": "US", "Value": [272]}}]}}
    response._content = json.dumps(failed).encode()
    log = "I plugin loaded\nW STOW-RS: instance 1.2.3 not stored (0x0110): core status Failure\n"
    side = SimpleNamespace(orthanc=SimpleNamespace(log_text=lambda: log))
    message = stow_failure(side, response)  # type: ignore[arg-type]
    assert "202" in message and "[272]" in message and "core status Failure" in message
