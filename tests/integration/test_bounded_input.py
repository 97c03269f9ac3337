"""Hostile bodies against a live Orthanc: deep nesting and huge part counts are refused with a
clear 4xx, quickly, and the process survives them."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from orthanc_dicomweb.http.bounded import MAX_NESTING, MAX_SEQUENCE_DEPTH
from orthanc_dicomweb.http.multipart import encode_multipart
from tests.datasets import nested, part10
from tests.harness import Orthanc
from tests.integration.test_stow import BOUNDARY, FAILED, JSON_TYPE, XML_TYPE, stow
from tests.unit.test_client import Remote, send

FAILURE_REASON, CANNOT_UNDERSTAND = "00081197", 0xC000


def nested_dataset(depth: int) -> Dataset:
    """An SR-like dataset whose sequences nest `depth` levels deep."""
    return nested(depth, SOPClassUID="1.2.840.10008.5.1.4.1.1.88.11", PatientID="NESTED")


def alive(orthanc: Orthanc) -> bool:
    return orthanc.get("/system").status_code == 200


def assert_refused(answer: Any, status: int, limit: int) -> None:
    assert answer.status_code == status, answer.text
    assert f"{limit} levels" in answer.json()["Message"]


@pytest.fixture(scope="module")
def with_server(orthanc: Orthanc) -> Orthanc:
    assert orthanc.put("/dicom-web/servers/nowhere", json=["http://127.0.0.1:9/"]).ok
    return orthanc


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/dicom-web/servers/nowhere/get"),
        ("post", "/dicom-web/servers/nowhere/qido"),
        ("put", "/dicom-web/servers/other"),
        ("post", "/jobs/0123/pause"),  # a core job: the body would go to the core
    ],
)
@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_deeply_nested_json_bodies_are_refused(
    with_server: Orthanc, method: str, path: str, opening: bytes
) -> None:
    closing = b"]" if opening == b"[" else b"}"
    body = opening * 600 + closing * 600  # 1 KB: killed the process
    answer = getattr(with_server, method)(path, data=body)
    assert_refused(answer, 400, MAX_NESTING)
    assert alive(with_server)


def test_brackets_inside_strings_do_not_count(with_server: Orthanc) -> None:
    answer = with_server.post(
        "/dicom-web/servers/nowhere/get", json={"Uri": "/studies?x=" + "[" * 600}
    )
    assert answer.status_code == 502, answer.text  # reached the (unreachable) server


def test_deep_dicom_json_part_is_refused_before_storing(orthanc: Orthanc) -> None:
    stored = part10(nested_dataset(2))
    deep = b"[" * 600 + b"]" * 600
    body = encode_multipart(
        [(stored, "application/dicom", None), (deep, "application/dicom+json", None)], BOUNDARY
    )
    answer = stow(orthanc, body, content_type=JSON_TYPE)
    assert_refused(answer, 400, MAX_NESTING)
    assert pydicom.dcmread(io.BytesIO(stored)).SOPInstanceUID not in instance_uids(orthanc)


def test_deep_dicom_xml_part_is_refused(orthanc: Orthanc) -> None:
    xml = b"<NativeDicomModel>" + b"<Item>" * 1000 + b"</Item>" * 1000 + b"</NativeDicomModel>"
    body = encode_multipart([(xml, "application/dicom+xml", None)], BOUNDARY)
    answer = stow(orthanc, body, content_type=XML_TYPE)  # was a 500 (RecursionError)
    assert_refused(answer, 400, MAX_NESTING)


def test_part10_nested_beyond_the_core_is_not_handed_to_it(orthanc: Orthanc) -> None:
    deep = part10(nested_dataset(60))  # killed the core in POST /instances
    answer = stow(orthanc, encode_multipart([(deep, "application/dicom", None)], BOUNDARY))
    assert answer.status_code in (400, 409), answer.text  # all failed (the status is stow.py's)
    (failure,) = answer.json()[FAILED]["Value"]
    assert failure[FAILURE_REASON]["Value"] == [CANNOT_UNDERSTAND]
    assert alive(orthanc)


@pytest.mark.parametrize("loopback", [True, False])
def test_nesting_at_the_limit_is_stored(orthanc_factory, loopback: bool) -> None:
    # Without the loopback, the core parses on the Python callback's own thread.
    orthanc = orthanc_factory(None if loopback else {"HttpThreadsCount": 4})
    dataset = nested_dataset(MAX_SEQUENCE_DEPTH)
    answer = stow(
        orthanc, encode_multipart([(part10(dataset), "application/dicom", None)], BOUNDARY)
    )
    assert answer.status_code == 200, answer.text
    metadata = {**dataset.to_json_dict(), "00080018": {"vr": "UI", "Value": [generate_uid()]}}
    body = encode_multipart(
        [(json.dumps(metadata).encode(), "application/dicom+json", None)], BOUNDARY
    )
    assert stow(orthanc, body, content_type=JSON_TYPE).status_code == 200
    deeper = part10(nested_dataset(MAX_SEQUENCE_DEPTH + 1))
    answer = stow(orthanc, encode_multipart([(deeper, "application/dicom", None)], BOUNDARY))
    assert answer.json()[FAILED]["Value"]


def instance_uids(orthanc: Orthanc) -> set[str]:
    answer = orthanc.post("/tools/find", json={"Level": "Instance", "Query": {}, "Expand": True})
    return {instance["MainDicomTags"]["SOPInstanceUID"] for instance in answer.json()}


# --- Counts ----------------------------------------------------------------------------------


def empty_parts(count: int) -> bytes:
    delimiter = b"--" + BOUNDARY.encode()
    return (delimiter + b"\r\n\r\n\r\n") * count + delimiter + b"--\r\n"


def test_a_million_empty_parts_are_refused_at_once(orthanc: Orthanc) -> None:
    body = empty_parts(1_000_000)  # 22 MB: 18 s, +1 GB and a 41 MB answer before
    started = time.monotonic()
    answer = stow(orthanc, body)
    elapsed = time.monotonic() - started
    assert answer.status_code == 413, answer.text
    assert "10000" in answer.json()["Message"]
    assert len(answer.content) < 1000
    assert elapsed < 3, elapsed


def test_the_instance_limit_is_configurable_and_counts_json_data_sets(orthanc_factory) -> None:
    orthanc = orthanc_factory({"DicomWeb": {"StowServerMaxInstances": 3}})
    assert stow(orthanc, empty_parts(4)).status_code == 413
    assert stow(orthanc, empty_parts(3)).status_code != 413
    datasets = json.dumps([{}] * 4).encode()
    body = encode_multipart([(datasets, "application/dicom+json", None)], BOUNDARY)
    answer = stow(orthanc, body, content_type=JSON_TYPE)
    assert answer.status_code == 413, answer.text


def test_wildcards_cannot_make_a_search_backtrack_for_minutes(orthanc: Orthanc) -> None:
    dataset = nested_dataset(1)
    request = Dataset()
    request.RequestedProcedureDescription = "a" * 64
    dataset.RequestAttributesSequence = Sequence([request])  # sequences: matched by the plugin
    body = encode_multipart([(part10(dataset), "application/dicom", None)], BOUNDARY)
    assert stow(orthanc, body).ok
    pattern = "*a" * 8 + "*b"  # a regular expression backtracked over it for 3 minutes
    started = time.monotonic()
    answer = orthanc.get(
        f"/dicom-web/instances?StudyInstanceUID={dataset.StudyInstanceUID}"
        f"&00400275.00321060={pattern}"
    )
    assert answer.status_code in (200, 204), answer.text
    assert not answer.content.strip() or answer.json() == []
    assert time.monotonic() - started < 5
    found = orthanc.get(
        f"/dicom-web/instances?StudyInstanceUID={dataset.StudyInstanceUID}"
        f"&00400275.00321060={pattern[:-1]}"
    )
    assert len(found.json()) == 1


def test_a_remote_answer_nested_too_deep_is_a_502(orthanc: Orthanc) -> None:
    remote = Remote()
    deep = b"[" * 600 + b"]" * 600  # decoded on an HTTP thread: it would kill Orthanc
    remote.routes["/dicom-web/studies"] = lambda handler: send(handler, 200, deep)
    try:
        assert orthanc.put("/dicom-web/servers/deep", json=[remote.url]).ok
        answer = orthanc.post("/dicom-web/servers/deep/qido", json={"Uri": "/studies"})
        assert answer.status_code == 502, answer.text
        assert f"{MAX_NESTING} levels" in answer.json()["Message"]
        assert alive(orthanc)
    finally:
        remote.close()
