"""Decoding untrusted bodies within bounds: nesting depth, checked before any decoder runs.

Orthanc runs REST callbacks on HTTP threads with small stacks. The standard library's JSON
decoder recurses in C once per nesting level and overflows that stack near 500 levels: a 1 KB
body of `[[[...]]]` killed the whole process (a segfault, not an exception). ElementTree's
documents turn into Python recursion further on (RecursionError, a 500). So the depth is measured
first, by linear scans that recurse nowhere, and deeper input is refused with a 400 naming the
limit. The core is no safer (its JSON reader and its DICOM parser die on such input too), so
nothing deeper is ever handed to it either.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any
from xml.parsers import expat

from .errors import HttpError

# Nesting levels of a JSON or XML document. A DICOM JSON sequence costs 3 levels (attribute,
# Value array, item) and a DICOM XML one 2: 100 levels allow about 32 nested sequences, more
# than real data sets use, far below what overflows a worker thread's stack (~500).
MAX_NESTING = 100
# Sequences nested in a DICOM instance handed to the core: its parser recursed to death
# between 45 and 50 levels on an HTTP thread.
MAX_SEQUENCE_DEPTH = 32

# A JSON string (escapes included) or an unterminated one running to the end of the input: every
# attempt matches, so the scan stays linear whatever the input (no backtracking over quotes).
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]++")
_BRACKET_RUN = re.compile(r"\[+|\]+")
_OPENING_AS_BRACKETS = str.maketrans("{}", "[]")


class NestingTooDeep(HttpError):
    """Input nested deeper than a limit: a 400 that names it."""

    def __init__(self, what: str, limit: int, status: int = 400) -> None:
        super().__init__(status, f"{what} is nested deeper than {limit} levels (the limit)")
        self.limit = limit


def json_depth(text: str, stop_above: int = MAX_NESTING) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets in strings ignored);
    the count stops as soon as it passes `stop_above`."""
    structure = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    structure = structure.translate(_OPENING_AS_BRACKETS)
    depth = deepest = 0
    for run in _BRACKET_RUN.finditer(structure):
        length = run.end() - run.start()
        if structure[run.start()] == "[":
            depth += length
            deepest = max(deepest, depth)
            if deepest > stop_above:
                break
        else:
            depth = max(0, depth - length)  # an extra "]": invalid JSON, the decoder says so
    return deepest


def loads_json(
    data: bytes | memoryview, what: str, limit: int = MAX_NESTING, status: int = 400
) -> Any:
    """A JSON text, decoded once its depth is known to be safe: NestingTooDeep (with `status`:
    400 for a request, 502 for a remote server's answer) when it nests deeper than `limit`,
    ValueError when it is not JSON (UTF-8, -16 or -32, as `json.loads` takes: the depth is
    measured on the decoded text, where a quote is always a quote)."""
    raw = bytes(data)
    text = raw.decode(json.detect_encoding(raw))  # UnicodeDecodeError is a ValueError
    if json_depth(text, limit) > limit:
        raise NestingTooDeep(what, limit, status)
    return json.loads(text)


def check_json(data: bytes | memoryview, what: str, limit: int = MAX_NESTING) -> None:
    """NestingTooDeep when `data`, JSON or not, nests deeper than `limit` (for a body that is
    handed on undecoded, to a reader as fragile as ours)."""
    raw = bytes(data)
    try:
        text = raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # every byte a character: the brackets are all counted
    if json_depth(text, limit) > limit:
        raise NestingTooDeep(what, limit)


def xml_depth(data: bytes | memoryview, stop_above: int = MAX_NESTING) -> int:
    """How deep the elements of an XML document nest (expat keeps its element stack on the
    heap); the count stops as soon as it passes `stop_above`. A document that is not
    well-formed counts up to its first error: the real parser reports it afterwards."""
    parser = expat.ParserCreate()
    depth = deepest = 0

    def start(_name: str, _attributes: Any) -> None:
        nonlocal depth, deepest
        depth += 1
        deepest = max(deepest, depth)
        if deepest > stop_above:
            raise _DeepEnough

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    with contextlib.suppress(_DeepEnough, expat.ExpatError):
        parser.Parse(bytes(data), True)
    return deepest


def check_xml(data: bytes | memoryview, what: str, limit: int = MAX_NESTING) -> None:
    """NestingTooDeep when the XML document nests deeper than `limit`."""
    if xml_depth(data, limit) > limit:
        raise NestingTooDeep(what, limit)


class _DeepEnough(Exception):
    """Stops the XML scan once the answer is known."""


__all__ = [
    "MAX_NESTING",
    "MAX_SEQUENCE_DEPTH",
    "NestingTooDeep",
    "check_json",
    "check_xml",
    "json_depth",
    "loads_json",
    "xml_depth",
]
