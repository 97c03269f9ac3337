"""Matching keys handed to the core's `/tools/find`, which prefilters QIDO-RS searches.

The core's matching differs from PS3.4 C.2.2.2 (measured on Orthanc 1.10.1, see
tests/integration/test_qido_semantics.py):

- its `CaseSensitive` flag applies to every VR, where only PN may ignore case;
- its database folds the case of ASCII letters only (`Í` does not match `í`), and its `?`
  stands for one byte, not one character;
- ranges compare text: an empty value is before every date (`-20201231` matches it), and a
  partial time is not the interval it names (`-1015` excludes 101530);
- ModalitiesInStudy is always a list of exact values: `M*` matches nothing;
- it matches the whole text of a multi-valued attribute (`Doe` does not match
  `Doe\\Roe`), where one value matching is enough.

So each key is given to the core as a constraint whose matches include every true match (it
may find more), and `CoreQuery.exact` says whether the core's answer is the exact one. When
it is not, the search checks every candidate with `Matcher.matches` and pages the results
itself; when it is, the core pages them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pydicom.datadict import dictionary_VM

from .attributes import MODALITIES_IN_STUDY
from .matching import WILDCARD_VRS, Matcher, MatchKind

# After the digits: a text bound `HH~` is beyond every time of hour HH, whatever its form.
_AFTER_DIGITS = "~"


@dataclass(frozen=True)
class CoreQuery:
    """The `/tools/find` constraints (by tag) of a search's top-level matching keys, and the
    keys whose matches the core may widen (to be checked on each candidate)."""

    constraints: dict[int, str]
    case_sensitive: bool
    inexact: tuple[Matcher, ...]

    @property
    def exact(self) -> bool:
        return not self.inexact


def core_query(matchers: Iterable[Matcher], qido_case_sensitive: bool) -> CoreQuery:
    """The constraints of these (top-level, filtering) keys. The core's case flag is off only
    for case-insensitive PN keys: it then makes the other keys looser, so not exact."""
    matchers = tuple(matchers)
    fold_case = not qido_case_sensitive and any(m.vr == "PN" for m in matchers)
    constraints: dict[int, str] = {}
    inexact = []
    for matcher in matchers:
        constraint = _constraint(matcher, fold_case)
        if constraint is not None:
            constraints[matcher.tag] = constraint
        if constraint is None or not _is_exact(matcher, constraint, fold_case):
            inexact.append(matcher)
    return CoreQuery(constraints, not fold_case, tuple(inexact))


def _constraint(matcher: Matcher, fold_case: bool) -> str | None:
    """A C-FIND constraint matching at least what the key matches; None: none can."""
    if matcher.tag == MODALITIES_IN_STUDY:  # one value per series, matched by the core
        return None if matcher.kind is MatchKind.WILDCARD else "\\".join(matcher.values)
    several = _may_hold_several_values(matcher.tag)
    if several and (matcher.kind is MatchKind.LIST or matcher.vr not in WILDCARD_VRS):
        return None
    if matcher.kind is MatchKind.RANGE or matcher.vr in ("TM", "DT"):
        return _temporal_constraint(matcher)
    if matcher.kind is MatchKind.LIST:
        return "\\".join(matcher.values)
    value = matcher.values[0]
    if matcher.kind is MatchKind.WILDCARD:
        value = value.replace("?", "*")
    if matcher.vr == "PN" and fold_case:
        value = "".join("*" if _has_case_beyond_ascii(c) else c for c in value)
    return f"*{value}*" if several else value  # one of the values: somewhere in the text


@lru_cache(maxsize=256)
def _may_hold_several_values(tag: int) -> bool:
    """Whether the dictionary lets the attribute hold several values (VM other than 1)."""
    try:
        return dictionary_VM(tag) != "1"
    except KeyError:
        return False  # private or unknown: as one value, the core's reading


def _has_case_beyond_ascii(character: str) -> bool:
    return not character.isascii() and character.lower() != character.upper()


def _temporal_constraint(matcher: Matcher) -> str:
    """DA keys as they are (dates are always full); TM and DT widened to whole hours and
    years, where text comparison and the intervals of partial values agree."""
    low, high = matcher.values if matcher.kind is MatchKind.RANGE else matcher.values * 2
    if matcher.vr == "DA":
        return low if matcher.kind is MatchKind.SINGLE_VALUE else f"{low}-{high}"
    width = 2 if matcher.vr == "TM" else 4
    return f"{low[:width]}-{high[:width] + _AFTER_DIGITS if high else ''}"


def _is_exact(matcher: Matcher, constraint: str, fold_case: bool) -> bool:
    """Whether the core matches exactly what the key does with this constraint."""
    if constraint != _plain_form(matcher) or matcher.vr in ("TM", "DT"):
        return False  # widened, or partial times
    if matcher.vr == "DA":
        # A range without low bound also finds empty dates.
        return matcher.kind is MatchKind.SINGLE_VALUE or bool(matcher.values[0])
    # PN: the core folds the case of ASCII letters as the standard's reading does.
    return matcher.vr in ("UI", "PN") or not fold_case


def _plain_form(matcher: Matcher) -> str:
    """The key in C-FIND syntax, as given."""
    if matcher.kind is MatchKind.RANGE:
        return "-".join(matcher.values)
    return "\\".join(matcher.values)
