"""Fuzzing of everything that parses request input (hypothesis; no Orthanc).

Each parser may refuse its input only with the plugin's HttpError (the STOW-RS readers with
`InvalidInstance`, which becomes a per-instance failure); anything else would be a 500. The
`fuzz` settings profile bounds the time: a deadline per example catches super-linear work on
moderately sized input, and the example counts keep this module well under a minute.
"""

from __future__ import annotations

import io
import json
import re
import string
from collections.abc import Callable
from typing import Any

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orthanc_dicomweb.dicom import transfer_syntax
from orthanc_dicomweb.dicom.assembly import (
    InvalidInstance,
    assemble,
    check_nesting,
    read_identity,
    read_json_metadata,
    read_xml_metadata,
)
from orthanc_dicomweb.dicom.image_output import (
    parse_annotations,
    parse_icc_profile,
    parse_quality,
    parse_viewport,
    parse_window,
)
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http import negotiation
from orthanc_dicomweb.http.bounded import json_depth, loads_json, xml_depth
from orthanc_dicomweb.http.frame_list import parse_frame_list
from orthanc_dicomweb.http.multipart import boundary_of, iter_multipart, iter_streamed_parts
from orthanc_dicomweb.services.bulkdata import parse_bulk_path, parse_range, wants_single_part
from orthanc_dicomweb.services.qido.matching import parse_search, wildcard_matches
from tests.harness import PYDICOM_FILES

settings.register_profile(
    "fuzz",
    max_examples=150,
    deadline=2000,  # ms: generous for a shared machine, far below a hang
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples every run: failures reproduce, CI is stable
    database=None,
)
FUZZ = settings.get_profile("fuzz")

CT = (PYDICOM_FILES / "CT_small.dcm").read_bytes()
BOUNDARY = "fuzz-boundary"
DELIMITER = b"--" + BOUNDARY.encode()


def refuses_only_cleanly(parse: Callable[[], Any], *allowed: type[Exception]) -> Any:
    """Run `parse`; an HttpError (or an `allowed` type) is a clean refusal, a 5xx is not."""
    try:
        return parse()
    except HttpError as error:
        assert 400 <= error.status < 500, (error.status, error.message)
    except allowed:
        pass
    return None


# --- multipart ------------------------------------------------------------------------------

PIECES = st.sampled_from(
    [
        DELIMITER,
        DELIMITER + b"--",
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"Content-Type: application/dicom\r\n",
        b"Content-Location: x\r\n",
        b":",
        b" \t",
        b"--",
        b"DICM",
        DELIMITER + b"X",
    ]
)
MULTIPART_BODIES = st.lists(st.one_of(PIECES, st.binary(max_size=20)), max_size=40).map(b"".join)


@FUZZ
@given(MULTIPART_BODIES)
def test_multipart_parsing_refuses_cleanly(body: bytes) -> None:
    parts = refuses_only_cleanly(lambda: list(iter_multipart(body, BOUNDARY)))
    for part in parts or ():
        assert 0 <= part.offset <= part.end <= len(body)
        assert bytes(part.body) == body[part.offset : part.end]


@FUZZ
@given(MULTIPART_BODIES, st.lists(st.integers(1, 64), min_size=1, max_size=10))
def test_streamed_multipart_agrees_with_the_whole_body(body: bytes, sizes: list[int]) -> None:
    chunks, position = [], 0
    while position < len(body):
        size = sizes[len(chunks) % len(sizes)]
        chunks.append(body[position : position + size])
        position += size
    streamed = refuses_only_cleanly(lambda: list(iter_streamed_parts(chunks, BOUNDARY)))
    whole = refuses_only_cleanly(lambda: [bytes(p.body) for p in iter_multipart(body, BOUNDARY)])
    if streamed is not None and whole is not None:
        assert streamed == whole


@FUZZ
@given(st.text(max_size=120))
def test_content_types_refuse_cleanly(header: str) -> None:
    refuses_only_cleanly(lambda: boundary_of(header))
    refuses_only_cleanly(lambda: negotiation.parse_media_type(header))


# --- Accept ---------------------------------------------------------------------------------

ACCEPT_PIECES = st.sampled_from(
    [
        "multipart/related",
        "application/dicom",
        "application/octet-stream",
        'type="application/dicom"',
        "type=application/dicom+json",
        "transfer-syntax=*",
        "transfer-syntax=1.2.840.10008.1.2.4.50",
        "q=0.5",
        "q=abc",
        "*/*",
        "image/*",
        ";",
        ",",
        '"',
        "=",
        " ",
        "\\",
    ]
)
ACCEPTS = st.lists(st.one_of(ACCEPT_PIECES, st.text(max_size=8)), max_size=12).map("".join)


@FUZZ
@given(ACCEPTS)
def test_accept_headers_refuse_cleanly(accept: str) -> None:
    refuses_only_cleanly(lambda: negotiation.parse_accept(accept))
    refuses_only_cleanly(lambda: negotiation.metadata_format(accept))
    refuses_only_cleanly(lambda: negotiation.dicom_model_format(accept, "metadata"))
    refuses_only_cleanly(lambda: transfer_syntax.instance_targets(accept))
    refuses_only_cleanly(lambda: transfer_syntax.frame_targets(accept, "1.2.840.10008.1.2.1"))
    refuses_only_cleanly(lambda: wants_single_part(accept))
    offers = ["application/dicom+json", "application/json"]
    refuses_only_cleanly(lambda: negotiation.choose(negotiation.parse_accept(accept), offers))


# --- QIDO-RS --------------------------------------------------------------------------------

QIDO_NAMES = st.sampled_from(
    [
        "PatientName",
        "PatientID",
        "StudyDate",
        "StudyTime",
        "AcquisitionDateTime",
        "StudyInstanceUID",
        "ModalitiesInStudy",
        "00100010",
        "00400275.00321060",
        "ReferencedSeriesSequence",
        "includefield",
        "limit",
        "offset",
        "fuzzymatching",
        "Nonsense",
        "",
    ]
)
QIDO_VALUES = st.text(alphabet=string.printable + "é^=*?-", max_size=40)


@FUZZ
@given(st.dictionaries(QIDO_NAMES, QIDO_VALUES | st.lists(QIDO_VALUES, min_size=1, max_size=3)))
def test_qido_parameters_refuse_cleanly(parameters: dict[str, Any]) -> None:
    query = refuses_only_cleanly(lambda: parse_search(parameters))
    for matcher in query.matchers if query else ():
        matcher.matches(["DOE^JOHN", "20200101", "1.2.3"], case_sensitive=False)


WILDCARD_TEXT = st.text(alphabet="ab*?", max_size=12)


@FUZZ
@given(WILDCARD_TEXT, st.text(alphabet="ab", max_size=12))
def test_wildcard_matching_agrees_with_a_regular_expression(pattern: str, value: str) -> None:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    assert wildcard_matches(pattern, value) == (re.fullmatch(regex, value, re.S) is not None)


# --- frames, rendered, bulk data -----------------------------------------------------------

NUMBERS = st.text(alphabet="0123456789,.- x%;", max_size=30)


@FUZZ
@given(NUMBERS)
def test_frame_lists_refuse_cleanly(text: str) -> None:
    numbers = refuses_only_cleanly(lambda: parse_frame_list(text))
    assert numbers is None or all(number >= 1 for number in numbers)


@FUZZ
@given(NUMBERS, st.text(max_size=20))
def test_rendered_parameters_refuse_cleanly(numbers: str, text: str) -> None:
    for parse in (parse_quality, parse_viewport, parse_window, parse_annotations):
        refuses_only_cleanly(lambda parse=parse: parse(numbers))
        refuses_only_cleanly(lambda parse=parse: parse(text))
    refuses_only_cleanly(lambda: parse_icc_profile(text))


@FUZZ
@given(st.text(alphabet="0123456789abcdefABCDEF/x-", max_size=40))
def test_bulk_data_paths_refuse_cleanly(text: str) -> None:
    refuses_only_cleanly(lambda: parse_bulk_path(text))


@FUZZ
@given(st.text(alphabet="bytes=0123456789-, ", max_size=30), st.integers(0, 10**12))
def test_ranges_are_inside_the_value_or_refused(header: str, size: int) -> None:
    byte_range = refuses_only_cleanly(lambda: parse_range(header, size))
    if byte_range is not None:
        assert 0 <= byte_range.first <= byte_range.last < size


# --- DICOM JSON, XML, Part 10 ----------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@FUZZ
@given(JSON_VALUES)
def test_json_depth_is_the_true_depth(value: Any) -> None:
    def depth(item: Any) -> int:
        if isinstance(item, list):
            return 1 + max(map(depth, item), default=0)
        if isinstance(item, dict):
            return 1 + max(map(depth, item.values()), default=0)
        return 0

    text = json.dumps(value)
    assert json_depth(text, 10**6) == depth(value)
    assert loads_json(text.encode("utf-16"), "Fuzz") == value


ATTRIBUTES = st.fixed_dictionaries(
    {"vr": st.sampled_from(["PN", "UI", "SQ", "DS", "IS", "OB", "US", "AT", "XX", ""])},
    optional={
        "Value": st.lists(
            st.one_of(st.text(max_size=8), st.integers(-(2**70), 2**70), st.floats(), JSON_VALUES),
            max_size=3,
        ),
        "InlineBinary": st.text(max_size=12),
        "BulkDataURI": st.text(max_size=12),
    },
)
DATASETS = st.dictionaries(
    st.sampled_from(["00080016", "00080018", "0020000D", "0020000E", "00100010", "7FE00010"])
    | st.text(alphabet="0123456789ABCDEFx", max_size=9),
    ATTRIBUTES | JSON_VALUES,
    max_size=6,
)


@FUZZ
@given(st.one_of(DATASETS, st.lists(DATASETS, max_size=3), JSON_VALUES))
def test_dicom_json_metadata_refuses_cleanly(value: Any) -> None:
    data = memoryview(json.dumps(value).encode())
    datasets = refuses_only_cleanly(lambda: read_json_metadata(data), InvalidInstance)
    for dataset in datasets or ():
        refuses_only_cleanly(lambda dataset=dataset: assemble(dataset, {}), InvalidInstance)


XML_PIECES = st.sampled_from(
    [
        "<NativeDicomModel>",
        "</NativeDicomModel>",
        '<DicomAttribute tag="00100010" vr="PN">',
        '<DicomAttribute tag="0040A730" vr="SQ">',
        '<DicomAttribute tag="zz" vr="">',
        "</DicomAttribute>",
        '<Item number="1">',
        '<Item number="99999999999">',
        "</Item>",
        '<Value number="1">',
        "</Value>",
        "<PersonName><Alphabetic><FamilyName>",
        "</FamilyName></Alphabetic></PersonName>",
        "<InlineBinary>AAAA</InlineBinary>",
        '<BulkData uri="x"/>',
        "&amp;",
        "&bogus;",
        "<![CDATA[<]]>",
        "<!-- c -->",
        "<",
        ">",
    ]
)
XML_BODIES = st.lists(st.one_of(XML_PIECES, st.text(max_size=6)), max_size=30).map("".join)


@FUZZ
@given(XML_BODIES)
def test_dicom_xml_metadata_refuses_cleanly(text: str) -> None:
    data = memoryview(text.encode())
    assert xml_depth(data, 10**6) >= 0
    datasets = refuses_only_cleanly(lambda: read_xml_metadata(data), InvalidInstance)
    for dataset in datasets or ():
        refuses_only_cleanly(lambda dataset=dataset: assemble(dataset, {}), InvalidInstance)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(CT) - 1), st.integers(0, 255)), max_size=8))
def test_damaged_part10_files_are_refused_cleanly(changes: list[tuple[int, int]]) -> None:
    data = bytearray(CT)
    for position, byte in changes:
        data[position] = byte
    refuses_only_cleanly(lambda: read_identity(memoryview(data)), InvalidInstance)
    refuses_only_cleanly(lambda: check_nesting(memoryview(data)), InvalidInstance)


@FUZZ
@given(st.integers(0, len(CT)))
def test_truncated_part10_files_are_refused_cleanly(length: int) -> None:
    data = memoryview(CT[:length])
    refuses_only_cleanly(lambda: read_identity(data), InvalidInstance)
    refuses_only_cleanly(lambda: check_nesting(data), InvalidInstance)


def test_the_ct_file_is_readable() -> None:  # the mutations above start from a good file
    dataset = pydicom.dcmread(io.BytesIO(CT))
    assert read_identity(memoryview(CT)).sop_instance == dataset.SOPInstanceUID


@pytest.mark.parametrize("size", [10**6])
def test_parsing_time_grows_linearly(size: int) -> None:
    """Inputs that make naive parsers quadratic: runs of look-alike delimiters, quotes."""
    import time

    bodies = [
        (DELIMITER + b"X\r\n") * (size // 20),
        DELIMITER + b"\r\n" + b"\r\n" * (size // 2),
        DELIMITER + b"\r\n" + b":" * size,
    ]
    for body in bodies:
        started = time.monotonic()
        refuses_only_cleanly(lambda body=body: list(iter_multipart(body, BOUNDARY)))
        assert time.monotonic() - started < 2, body[:40]
    started = time.monotonic()
    json_depth('"\\"' * size)
    json_depth("[" + '"\\\\",' * size + "]")
    assert time.monotonic() - started < 2
