"""Pure reporting: targets, rows, the ratio table (text and reStructuredText) and the JSON."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Reference = Literal["official", "core", "limit"]
RESULTS_SECTION = "Latest results"


@dataclass(frozen=True)
class Target:
    """One goal for a row: a minimum advantage over a reference, or an absolute limit."""

    reference: Reference
    value: float
    text: str

    def is_met(self, row: Row) -> bool | None:
        """None when the figures needed to decide are missing."""
        if row.python is None:
            return None
        if self.reference == "limit":
            return row.python >= self.value if row.higher_is_better else row.python <= self.value
        baseline = row.official if self.reference == "official" else row.core
        found = advantage(row.python, baseline, row.higher_is_better)
        return None if found is None else found >= self.value


def faster(factor: float) -> Target:
    """At least `factor` times better than the official plugin."""
    return Target("official", factor, f">={factor:g}x official")


def near_core(factor: float, text: str) -> Target:
    """At least `factor` of the core's own figure (e.g. 0.9 of its rate, 1/1.5 of its time)."""
    return Target("core", factor, text)


def at_most(limit: float, text: str) -> Target:
    """An absolute bound on this plugin's figure (an upper bound unless higher is better)."""
    return Target("limit", limit, text)


@dataclass(frozen=True)
class Metric:
    """What a row measures: its name, unit, direction and goals."""

    operation: str
    unit: str
    higher_is_better: bool = False
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class Row:
    """One operation's figures on both plugins (None: not available) and the core's own."""

    operation: str
    unit: str
    higher_is_better: bool
    official: float | None
    python: float | None
    core: float | None = None
    targets: tuple[Target, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def of(
        cls,
        metric: Metric,
        official: float | None,
        python: float | None,
        core: float | None = None,
        notes: Sequence[str] = (),
    ) -> Row:
        return cls(
            metric.operation,
            metric.unit,
            metric.higher_is_better,
            official,
            python,
            core,
            metric.targets,
            tuple(notes),
        )

    @property
    def ratio(self) -> float | None:
        """How many times better this plugin is than the official one (>1: better)."""
        return advantage(self.python, self.official, self.higher_is_better)

    @property
    def met(self) -> bool | None:
        """All targets met; None when no target applies or a needed figure is missing."""
        verdicts = [target.is_met(self) for target in self.targets]
        if not verdicts or None in verdicts:
            return None
        return all(verdicts)


def advantage(python: float | None, baseline: float | None, higher_is_better: bool) -> float | None:
    """`baseline / python` for times and sizes, `python / baseline` for rates."""
    if python is None or baseline is None:
        return None
    numerator, denominator = (python, baseline) if higher_is_better else (baseline, python)
    if denominator == 0:
        return math.inf if numerator > 0 else None
    return numerator / denominator


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def format_number(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_ratio(value: float | None) -> str:
    return "n/a" if value is None else format_number(value) + "x"


def format_met(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[value]


HEADER = ("operation", "unit", "official", "python", "ratio", "core", "target", "met?")


def table_cells(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """The table as strings, header first."""
    cells = [HEADER]
    for row in rows:
        cells.append(
            (
                row.operation,
                row.unit,
                format_number(row.official),
                format_number(row.python),
                format_ratio(row.ratio),
                format_number(row.core),
                "; ".join(target.text for target in row.targets) or "-",
                format_met(row.met),
            )
        )
    return cells


def _widths(cells: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(line[column]) for line in cells) for column in range(len(cells[0]))]


def text_table(rows: Sequence[Row]) -> str:
    """A fixed-width table for the terminal; numbers right-aligned."""
    cells = table_cells(rows)
    widths = _widths(cells)
    lines = []
    for index, line in enumerate(cells):
        parts = [
            value.ljust(width) if column in (0, 1, 6) else value.rjust(width)
            for column, (value, width) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def rst_table(rows: Sequence[Row]) -> str:
    """A reStructuredText simple table."""
    cells = table_cells(rows)
    widths = _widths(cells)
    rule = " ".join("=" * width for width in widths)
    body = [" ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join([rule, body[0].rstrip(), rule, *(b.rstrip() for b in body[1:]), rule])


def notes_of(rows: Sequence[Row]) -> list[str]:
    """Every row's notes, prefixed with the operation."""
    return [f"{row.operation}: {note}" for row in rows for note in row.notes]


def to_json(rows: Sequence[Row], machine: dict[str, Any], started: str, quick: bool) -> dict:
    """The whole run as plain JSON values (ratio and verdict included)."""
    return {
        "started": started,
        "quick": quick,
        "machine": machine,
        "rows": [
            {
                **{key: value for key, value in asdict(row).items() if key != "targets"},
                "notes": list(row.notes),
                "ratio": row.ratio,
                "targets": [asdict(target) for target in row.targets],
                "met": row.met,
            }
            for row in rows
        ],
    }


def results_section(rows: Sequence[Row], machine: dict[str, Any], started: str, quick: bool) -> str:
    """The body of the "Latest results" section of README.rst."""
    mode = " (quick mode: fewer repetitions, shorter load)" if quick else ""
    lines = [
        f"Measured {started} on {machine['cpu']} ({machine['nproc']} cores, "
        f"{machine['memory_gb']} GB RAM, load average {machine.get('load_average_at_end', '?')} "
        f"at the end), Orthanc {machine['orthanc']}{mode}. "
        "Ratio: how many times better this plugin is than the official one.",
        "",
        rst_table(rows),
    ]
    notes = notes_of(rows)
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def replace_section(document: str, title: str, body: str) -> str:
    """Replace the section `title` (up to the next section of the same level) with `body`."""
    heading = re.compile(rf"^{re.escape(title)}\n([=\-~^\"'`#*+<>])\1+\n", re.MULTILINE)
    found = heading.search(document)
    if found is None:
        underline = "-" * len(title)
        return document.rstrip("\n") + f"\n\n{title}\n{underline}\n\n{body}"
    # The section ends at the next heading of any level (it has no subsections).
    next_heading = re.compile(r"^[^\n]+\n([=\-~^\"'`#*+<>])\1{2,}\n", re.MULTILINE)
    following = next_heading.search(document, found.end())
    end = following.start() if following else len(document)
    tail = "\n" + document[end:] if following else ""
    return document[: found.end()] + "\n" + body + tail
