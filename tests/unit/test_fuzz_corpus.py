"""Nasty inputs found by fuzzing and by hand, kept as regression tests (no Orthanc)."""

from __future__ import annotations

import json
import time
import zlib

import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from orthanc_dicomweb.dicom import scan as dicom_scan
from orthanc_dicomweb.dicom.assembly import UnreadableInstance, check_nesting, read_identity
from orthanc_dicomweb.dicom.xml_model import from_native_xml
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.bounded import (
    MAX_NESTING,
    MAX_SEQUENCE_DEPTH,
    NestingTooDeep,
    bracket_depth,
    check_brackets,
    check_json,
    json_depth,
    loads_json,
    xml_depth,
)
from orthanc_dicomweb.http.multipart import parse_multipart
from orthanc_dicomweb.services.qido.matching import wildcard_matches
from tests.datasets import identified, nested, part10

# --- nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 600 + b"]" * 600,  # killed Orthanc (C recursion in json on a worker stack)
        b'{"a":' * 600 + b"1" + b"}" * 600,
        b"[" * 100_000,  # unterminated
        ('["é",' + "[" * 600).encode("utf-16"),  # another encoding: the depth is still seen
    ],
)
def test_deep_json_is_refused_before_decoding(body: bytes) -> None:
    with pytest.raises(NestingTooDeep) as raised:
        loads_json(body, "The body")
    assert raised.value.status == 400
    assert f"{MAX_NESTING} levels" in raised.value.message


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('["[[[[", "]]]", "\\"[["]', 1),  # brackets in strings, escaped quotes
        ('"\\\\"[[]]', 2),  # an escaped backslash ends before the quote
        ('"unterminated [[[[', 0),
        ("]]]][[", 0),  # a decoder stops at the first "]" too many
        ("", 0),
    ],
)
def test_json_depth_ignores_strings(text: str, depth: int) -> None:
    assert json_depth(text) == depth


def test_deep_xml_is_refused_before_the_tree_is_walked() -> None:
    xml = b"<NativeDicomModel>" + b"<Item>" * 1000 + b"</Item>" * 1000 + b"</NativeDicomModel>"
    with pytest.raises(HttpError) as raised:  # was a 500 (RecursionError)
        from_native_xml(xml)
    assert raised.value.status == 400
    assert xml_depth(b"<a>" * 5000, 10) == 11  # stops early, even when not well-formed


@pytest.mark.parametrize("before_the_uids", [False, True])
def test_part10_sequences_nested_too_deep_are_refused(before_the_uids: bool) -> None:
    data = memoryview(part10(nested(60, before_the_uids)))  # the core died near 50
    read_identity(data)  # the identity scan no longer recurses either
    with pytest.raises(UnreadableInstance, match=f"{MAX_SEQUENCE_DEPTH} levels"):
        check_nesting(data)
    check_nesting(memoryview(part10(nested(MAX_SEQUENCE_DEPTH))))


def test_undefined_lengths_nested_before_the_uids_are_walked_without_recursion() -> None:
    dataset = nested(150, before_the_uids=True)  # pydicom itself recurses to write deeper
    items = [dataset]
    while items:  # every sequence and item of undefined length: delimiters to walk through
        for element in items.pop():
            if element.VR == "SQ":
                element.is_undefined_length = True
                for item in element.value:
                    item.is_undefined_length_sequence_item = True
                    items.append(item)
    data = memoryview(part10(dataset))
    assert read_identity(data).sop_instance == dataset.SOPInstanceUID
    with pytest.raises(UnreadableInstance, match="nested deeper"):
        check_nesting(data)


def test_a_deflate_bomb_is_not_inflated_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dicom_scan, "MAX_INFLATED", 2**20)  # 512 MB by default
    dataset = identified()
    data = part10(dataset, DeflatedExplicitVRLittleEndian)
    # The file meta, then a deflated run of zeros far beyond the limit.
    meta_end = 144 + int.from_bytes(data[140:144], "little")  # after (0002,0000) and its group
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bomb.compress(b"\0" * 2 * dicom_scan.MAX_INFLATED) + bomb.flush()
    assert len(zeros) < dicom_scan.MAX_INFLATED / 500
    with pytest.raises(UnreadableInstance, match="larger than"):
        check_nesting(memoryview(data[:meta_end] + zeros))


# --- STOW-RS bodies ------------------------------------------------------------------------


def test_a_million_empty_parts_stop_at_the_limit() -> None:
    body = b"--b\r\n\r\n\r\n" * 1_000_000 + b"--b--\r\n"
    started = time.monotonic()
    with pytest.raises(HttpError) as raised:
        parse_multipart(body, "b", max_parts=10_000)
    assert raised.value.status == 413
    assert time.monotonic() - started < 1


def test_a_garbled_character_set_reads_as_utf8() -> None:
    # Found by fuzzing: bytes of the next element ran into SpecificCharacterSet (with NULs),
    # and pydicom's codec lookup raised ValueError: a 500 on STOW-RS.
    data = part10(identified(SpecificCharacterSet="ISO_IR 100", PatientID="é"))
    data = data.replace(b"ISO_IR 100", b"ISO_IR\x00100")
    identity = read_identity(memoryview(data))
    assert identity.sop_instance


# --- QIDO-RS -------------------------------------------------------------------------------


def test_wildcards_that_made_a_regex_backtrack_exponentially() -> None:
    started = time.monotonic()
    assert not wildcard_matches("*a*a*a*a*a*a*a*a*b", "a" * 64)  # 3 minutes with re
    assert wildcard_matches("*a*a*a*a*a*a*a*a*", "a" * 64)
    assert time.monotonic() - started < 0.5


def test_json_depth_of_a_large_dicom_json_is_quick() -> None:
    element = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "x[y]"}]}}
    text = json.dumps([element] * 100_000)
    started = time.monotonic()
    assert json_depth(text) == 5
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("data", "depth"),
    [(b"[[[]", 3), (b"]]][[", 0), (b"[[]]]][[[", 2), (b"", 0), (b"{[x]}" * 3, 2)],
)
def test_bracket_depth_counts_what_a_decoder_would_enter(data: bytes, depth: int) -> None:
    assert bracket_depth(data) == depth


def test_a_body_handed_on_undecoded_counts_brackets_in_strings_too() -> None:
    check_brackets(b'{"a": "' + b"[" * (MAX_NESTING - 1) + b'"}', "The body")
    with pytest.raises(NestingTooDeep):  # a comment /* " */ may hide the quotes from a reader
        check_brackets(b'{"a": "' + b"[" * MAX_NESTING + b'"}', "The body")
    check_json(b'{"a": "' + b"[" * 1000 + b'"}', "A JSON part")  # decoded by us: exact


def test_a_json_part_that_is_not_text_is_left_to_the_decoder() -> None:
    check_json(b"\xff\xfe\xfd" + b"[" * 1000, "A JSON part")
