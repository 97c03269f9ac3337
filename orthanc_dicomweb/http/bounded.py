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
from typing import Any
from xml.parsers import expat

import numpy as np

from ..errors import HttpError

# Nesting levels of a JSON or XML document. A DICOM JSON sequence costs 3 levels (attribute,
# Value array, item) and a DICOM XML one 2: 100 levels allow about 32 nested sequences, more
# than real data sets use, far below what overflows a worker thread's stack (~500).
MAX_NESTING = 100
# Sequences nested in a DICOM instance handed to the core: its parser recursed to death
# between 45 and 50 levels on an HTTP thread.
MAX_SEQUENCE_DEPTH = 32

_CHUNK = 4 * 2**20  # brackets counted at once (16 MB of int32 levels)
_OPENING_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")


class NestingTooDeep(HttpError):
    """Input nested deeper than a limit: a 400 that names it."""

    def __init__(self, what: str, limit: int, status: int = 400) -> None:
        super().__init__(status, f"{what} is nested deeper than {limit} levels (the limit)")
        self.limit = limit


def json_depth(text: str, stop_above: int = MAX_NESTING) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets in strings ignored);
    the count stops as soon as it passes `stop_above`.

    Exact for valid JSON, the only kind the decoder accepts afterwards: once the escaped
    backslashes and quotes are gone, every quote opens or closes a string, so the text outside
    strings is every other piece between quotes. All in C-speed string operations (6 MB of
    DICOM JSON: 0.1 s).
    """
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    outside = "".join(unescaped.split('"')[::2])
    return bracket_depth(outside.encode("utf-8", "replace"), stop_above)


def bracket_depth(data: bytes, stop_above: int = MAX_NESTING) -> int:
    """How deep the brackets `[]` and braces `{}` of `data` nest, wherever they are (openers
    never closed count too: a decoder goes down into them before it sees the end). A closer
    too many ends the count: a decoder stops there. The count stops as soon as it passes
    `stop_above`; numpy runs it, a few MB at a time (20 MB of brackets: 0.1 s)."""
    structure = data.translate(_OPENING_AS_BRACKETS, _NOT_BRACKETS)
    depth = deepest = 0
    for start in range(0, len(structure), _CHUNK):
        chunk = np.frombuffer(structure, np.uint8, min(_CHUNK, len(structure) - start), start)
        levels = depth + np.cumsum(ord("\\") - chunk.astype(np.int32))  # "[" +1, "]" -1
        below = np.flatnonzero(levels < 0)
        if below.size:
            return max(deepest, int(levels[: below[0]].max(initial=0)))
        deepest, depth = max(deepest, int(levels.max())), int(levels[-1])
        if deepest > stop_above:
            break
    return deepest


def loads_json(
    data: bytes | memoryview, what: str, limit: int = MAX_NESTING, status: int = 400
) -> Any:
    """A JSON text, decoded once its depth is known to be safe: NestingTooDeep (with `status`:
    400 for a request, 502 for a remote server's answer) when it nests deeper than `limit`,
    ValueError when it is not JSON (UTF-8, -16 or -32, as `json.loads` takes: the depth is
    measured on the decoded text, where a quote is always a quote)."""
    text = _json_text(data)  # UnicodeDecodeError is a ValueError
    if json_depth(text, limit) > limit:
        raise NestingTooDeep(what, limit, status)
    return json.loads(text)


def check_json(data: bytes | memoryview, what: str, limit: int = MAX_NESTING) -> None:
    """NestingTooDeep when the JSON text `data` nests deeper than `limit` (brackets in strings
    ignored); text that is not JSON is left for the decoder to refuse."""
    with contextlib.suppress(UnicodeDecodeError):
        if json_depth(_json_text(data), limit) > limit:
            raise NestingTooDeep(what, limit)


def _json_text(data: bytes | memoryview) -> str:
    raw = bytes(data)
    return raw.decode(json.detect_encoding(raw))


def check_brackets(data: bytes | memoryview, what: str, limit: int = MAX_NESTING) -> None:
    """NestingTooDeep when `data`, JSON or not, nests deeper than `limit`: for a body handed on
    undecoded to a reader as fragile as ours. Every bracket counts, even in strings: that
    reader may take comments, where a quote opens no string."""
    raw = bytes(data)
    # Bytes that are no text in an encoding JSON allows are counted as they are.
    with contextlib.suppress(UnicodeDecodeError):
        raw = raw.decode(json.detect_encoding(raw)).encode("utf-8")
    if bracket_depth(raw, limit) > limit:
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
    "bracket_depth",
    "check_brackets",
    "check_json",
    "check_xml",
    "json_depth",
    "loads_json",
    "xml_depth",
]
