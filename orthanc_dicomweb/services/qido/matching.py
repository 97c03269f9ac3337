"""QIDO-RS query parameters (PS3.18 8.3.4) as a typed search, and the matching rules of PS3.4 C.2.

Matching keys become `Matcher`s of one of the standard's kinds (universal, single value,
wildcard, range, UID list); `limit`, `offset`, `fuzzymatching` and `includefield` are read and
checked here, so a service only sees values that make sense. `Matcher.matches` is the
standard's matching; the core's `/tools/find` prefilters with it where it can (`qido_core`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ...dicom.tags import parse_tag, tag_key, vr_of
from ...dicom.values import TEXT_VRS
from ...errors import HttpError, bad_request
from ...orthanc.resources import validate_uid

LIMIT = "limit"
OFFSET = "offset"
FUZZY_MATCHING = "fuzzymatching"
INCLUDE_FIELD = "includefield"
MAX_PAGE_NUMBER = 2**31 - 1
# Matching a pattern costs up to its length times the value's: keep hostile ones out.
MAX_PATTERN_LENGTH = 256

_DATE = r"\d{8}"
_TIME = r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?"
# A UTC offset is -1200 to +1400: "202006-2022" is a range, not a month at offset -20:22.
_DATE_TIME = r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-](0\d|1[0-4])[0-5]\d)?"
_TEMPORAL_FORMATS = {"DA": _DATE, "TM": _TIME, "DT": _DATE_TIME}
_TEMPORAL_EXAMPLES = {"DA": "YYYYMMDD", "TM": "HHMMSS", "DT": "YYYYMMDDHHMMSS"}
_RANGES = {vr: re.compile(f"^(?P<low>{p})?-(?P<high>{p})?$") for vr, p in _TEMPORAL_FORMATS.items()}
_SINGLES = {vr: re.compile(f"^{p}$") for vr, p in _TEMPORAL_FORMATS.items()}
# Code strings cannot hold commas, so a comma there separates values (as between UIDs).
_LIST_VRS = frozenset({"UI", "CS"})
# The VRs wildcard matching is defined for (PS3.4 C.2.2.2.4).
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
# Every digit of a full DA, TM and DT value (with 6 fraction digits), at its smallest and
# largest: completing a partial value with them gives the first and last instants it names.
_TEMPORAL_COMPLETIONS = {
    "DA": ("00000101", "99991231"),
    "TM": ("000000000000", "235959999999"),
    "DT": ("00000101000000000000", "99991231235959999999"),
}
_DT_OFFSET = re.compile(r"[+-]\d{4}$")


class MatchKind(Enum):
    UNIVERSAL = "universal"
    SINGLE_VALUE = "single value"
    WILDCARD = "wildcard"
    RANGE = "range"
    LIST = "list"


@dataclass(frozen=True)
class Matcher:
    """One matching key: the attribute (a path through sequences), its VR and the values.

    `values` holds the single value or pattern, the (low, high) bounds of a range (either may
    be ""), or the members of a list.
    """

    path: tuple[int, ...]
    vr: str
    kind: MatchKind
    values: tuple[str, ...] = ()

    @property
    def tag(self) -> int:
        """The top-level attribute: the one returned in the answer."""
        return self.path[0]

    @property
    def in_sequence(self) -> bool:
        return len(self.path) > 1

    @property
    def filters(self) -> bool:
        return self.kind is not MatchKind.UNIVERSAL

    @property
    def can_match(self) -> bool:
        """False for a range that ends before it starts: it matches nothing."""
        if self.kind is not MatchKind.RANGE or not all(self.values):
            return True
        low, high = (temporal_interval(self.vr, bound) for bound in self.values)
        return low is not None and high is not None and low[0] <= high[1]

    def matches(self, candidates: Iterable[str], case_sensitive: bool) -> bool:
        """Whether one of the attribute's values matches (PS3.4 C.2.2.2).

        `case_sensitive` applies to PN only; other VRs always match case-sensitively.
        """
        if not self.filters:
            return True
        fold = self.vr == "PN" and not case_sensitive
        # No value is matched as "": only wildcards like "**" match it (PS3.4 C.2.2.2.4).
        values = [value for text in candidates if (value := _unpadded(self.vr, text))] or [""]
        return any(self._matches_one(_normalize(value, fold), fold) for value in values)

    def _matches_one(self, value: str, fold: bool) -> bool:
        if self.vr in _TEMPORAL_FORMATS:
            return self._matches_instant(value)
        if self.kind is MatchKind.LIST:
            return value in self.values
        pattern = _normalize(self.values[0], fold)
        if self.kind is MatchKind.WILDCARD:
            return wildcard_matches(pattern, value)
        return value == pattern

    def _matches_instant(self, value: str) -> bool:
        """A date or time stored falls in the interval the key names: a single value stands
        for the interval of its precision (TM "10" is 10:00:00 to 10:59:59.999999), a range
        from the start of its low bound's interval to the end of its high bound's."""
        stored = temporal_interval(self.vr, value)
        if stored is None:
            return False
        bounds = self.values * 2 if self.kind is MatchKind.SINGLE_VALUE else self.values
        low, high = (temporal_interval(self.vr, bound) if bound else None for bound in bounds)
        return (low is None or stored[0] >= low[0]) and (high is None or stored[0] <= high[1])


@dataclass(frozen=True)
class SearchQuery:
    """Everything a QIDO-RS request asks for, checked."""

    matchers: tuple[Matcher, ...] = ()
    include: frozenset[int] = frozenset()
    include_all: bool = False
    limit: int | None = None
    offset: int = 0
    fuzzy_matching: bool = False

    @property
    def core_matchers(self) -> tuple[Matcher, ...]:
        """Keys the core's `/tools/find` evaluates: filtering ones on top-level attributes."""
        return tuple(m for m in self.matchers if m.filters and not m.in_sequence)

    @property
    def sequence_matchers(self) -> tuple[Matcher, ...]:
        """Keys evaluated here, on the instances' tags."""
        return tuple(m for m in self.matchers if m.filters and m.in_sequence)

    @property
    def matched_tags(self) -> frozenset[int]:
        """The top-level attributes given as matching keys (universal ones too)."""
        return frozenset(m.tag for m in self.matchers if not m.in_sequence)

    @property
    def returned_tags(self) -> frozenset[int]:
        """Attributes asked by `includefield` or as matching keys (both are returned)."""
        return self.include | {m.tag for m in self.matchers}


def parse_search(parameters: Mapping[str, str | Sequence[str]]) -> SearchQuery:
    """The typed search of decoded query parameters (values may be repeated: lists too)."""
    matchers: list[Matcher] = []
    include: set[int] = set()
    include_all = False
    limit: int | None = None
    offset = 0
    fuzzy = False
    for name, raw in parameters.items():
        values = [raw] if isinstance(raw, str) else list(raw)
        key = name.lower()
        if key == LIMIT:
            limit = parse_page_number(LIMIT, values[-1]) or None  # 0: no limit, as the core
        elif key == OFFSET:
            offset = parse_page_number(OFFSET, values[-1])
        elif key == FUZZY_MATCHING:
            fuzzy = parse_boolean(FUZZY_MATCHING, values[-1])
        elif key == INCLUDE_FIELD:
            fields = [field for value in values for field in value.split(",")]
            include_all = include_all or any(f.strip().lower() == "all" for f in fields)
            include.update(parse_attribute(f)[0] for f in fields if f.strip().lower() != "all")
        else:
            matchers.extend(parse_matcher(name, value) for value in values)
    return SearchQuery(tuple(matchers), frozenset(include), include_all, limit, offset, fuzzy)


def parse_page_number(name: str, text: str) -> int:
    if not text.strip().isdigit():
        raise bad_request(f"Parameter {name!r} must be a non-negative integer, not {text!r}")
    number = int(text)
    if number > MAX_PAGE_NUMBER:
        raise bad_request(f"Parameter {name!r} is too large: {text}")
    return number


def parse_boolean(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise bad_request(f"Parameter {name!r} must be true or false, not {text!r}")
    return value == "true"


def parse_attribute(text: str) -> tuple[int, ...]:
    """An attribute path: a keyword or tag, or dotted ones into sequences (`00400275.00321060`)."""
    if not text.strip():
        raise bad_request("Empty attribute name in the query")
    try:
        path = tuple(parse_tag(part) for part in text.split("."))
    except HttpError as error:
        raise bad_request(f"Unknown attribute {text!r}: use a keyword or 8 hex digits") from error
    for tag in path[:-1]:
        if vr_of(tag) != "SQ":
            raise bad_request(f"{tag_key(tag)} in {text!r} is not a sequence")
    return path


def parse_matcher(name: str, value: str) -> Matcher:
    """One matching key `name=value` (PS3.18 8.3.4.1), its kind decided by the VR and value."""
    path = parse_attribute(name)
    vr = vr_of(path[-1])
    if vr == "SQ":
        if value:
            raise bad_request(f"Sequence {name!r} can only be asked with an empty value")
        return Matcher(path, vr, MatchKind.UNIVERSAL)
    value = _unpadded(vr, value)
    if value in ("", "*"):
        return Matcher(path, vr, MatchKind.UNIVERSAL)
    if vr in _LIST_VRS and ("," in value or "\\" in value):
        members = tuple(v.strip() for v in re.split(r"[,\\]", value))
        return Matcher(path, vr, MatchKind.LIST, _checked_members(name, vr, members))
    if vr in _TEMPORAL_FORMATS:
        return _temporal_matcher(name, path, vr, value)
    if "*" in value or "?" in value:
        if vr not in WILDCARD_VRS:
            raise bad_request(f"Wildcards are not allowed for {name!r} (VR {vr}, PS3.4 C.2.2.2.4)")
        if len(value) > MAX_PATTERN_LENGTH:
            raise bad_request(f"Wildcard pattern for {name!r} longer than {MAX_PATTERN_LENGTH}")
        return Matcher(path, vr, MatchKind.WILDCARD, (value,))
    if vr == "UI":
        validate_uid(value, name)
    return Matcher(path, vr, MatchKind.SINGLE_VALUE, (value,))


def _checked_members(name: str, vr: str, members: tuple[str, ...]) -> tuple[str, ...]:
    if not all(members):
        raise bad_request(f"Empty value in the list given for {name!r}")
    if vr == "UI":
        for uid in members:
            validate_uid(uid, name)
    return members


def _temporal_matcher(name: str, path: tuple[int, ...], vr: str, value: str) -> Matcher:
    """Dates, times and date-times: a single value or a range, never a wildcard."""
    if "*" in value or "?" in value:
        raise bad_request(f"Wildcards are not allowed for {name!r} (VR {vr})")
    single = _SINGLES[vr].match(value)
    if single:
        return Matcher(path, vr, MatchKind.SINGLE_VALUE, (value,))
    bounds = _RANGES[vr].match(value)
    if not bounds or value == "-":
        example = _TEMPORAL_EXAMPLES[vr]
        raise bad_request(
            f"Malformed {vr} value for {name!r}: {value!r}; expected {example}, "
            f"{example}-, -{example} or {example}-{example}"
        )
    low, high = bounds.group("low") or "", bounds.group("high") or ""
    return Matcher(path, vr, MatchKind.RANGE, (low, high))


def temporal_interval(vr: str, text: str) -> tuple[int, int] | None:
    """The instants a DA, TM or DT value names, as comparable integers (first, last): the
    value's digits completed with the smallest and the largest values of the missing
    components (TM "1015" -> 101500000000, 101559999999). None for what is not such a value.
    Legacy forms (DA "2020.01.01", TM "10:15:30") are read; DT offsets are ignored."""
    digits = _temporal_digits(vr, text.strip(" "))
    first, last = _TEMPORAL_COMPLETIONS[vr]
    if digits is None or not 0 < len(digits) <= len(first):
        return None
    return int(digits + first[len(digits) :]), int(digits + last[len(digits) :])


def _temporal_digits(vr: str, text: str) -> str | None:
    if vr == "DA":
        text = text.replace(".", "")
    elif vr == "TM":
        text = text.replace(":", "")
    else:
        text = _DT_OFFSET.sub("", text)
    main, dot, fraction = text.partition(".")
    if not main.isdigit() or (dot and (len(main) != len(_TEMPORAL_COMPLETIONS[vr][0]) - 6)):
        return None
    if dot and not fraction.isdigit():
        return None
    return main + fraction


def _unpadded(vr: str, text: str) -> str:
    """Padding is not significant (PS3.5 6.2), but the leading spaces of texts are."""
    return text.rstrip(" ") if vr in TEXT_VRS else text.strip(" ")


def wildcard_matches(pattern: str, value: str) -> bool:
    """Whether `value` matches `pattern`, where `*` is any sequence of characters, `?` any single
    character and the rest literal.

    At most len(pattern) x len(value) steps: only the last `*` is ever moved on. A regular
    expression backtracks over every `*`: `*a*a*a*a*a*a*a*a*b` against 64 "a" ran 3 minutes.
    """
    p = v = 0
    star, resume = -1, 0  # the last `*` seen, and where its match would end next
    while v < len(value):
        if p < len(pattern) and pattern[p] == "*":
            star, resume, p = p, v, p + 1
        elif p < len(pattern) and pattern[p] in ("?", value[v]):
            p, v = p + 1, v + 1
        elif star >= 0:
            resume += 1  # the last `*` takes one more character
            p, v = star + 1, resume
        else:
            return False
    return all(c == "*" for c in pattern[p:])


def _normalize(text: str, fold: bool) -> str:
    """The case-insensitive form of a PN (Unicode case folding); accents stay significant, as
    in the core's matching. Other values as they are."""
    return unicodedata.normalize("NFC", text).casefold() if fold else text


# --- Values in DICOM JSON datasets ------------------------------------------------------------


def values_at(dataset: Mapping[str, Any], path: Sequence[int]) -> list[str]:
    """Every value found at the path, as text, through all items of the sequences on the way."""
    attribute = dataset.get(tag_key(path[0]))
    found = (attribute.get("Value") or []) if isinstance(attribute, Mapping) else []
    if len(path) > 1:
        return [v for item in found if isinstance(item, Mapping) for v in values_at(item, path[1:])]
    return [_text(value) for value in found if value is not None]


def _text(value: Any) -> str:
    """A JSON value as the DICOM string it came from (PN groups joined by "=")."""
    if isinstance(value, Mapping):
        groups = [value.get(name, "") for name in ("Alphabetic", "Ideographic", "Phonetic")]
        return "=".join(groups).rstrip("=")
    return str(value)
