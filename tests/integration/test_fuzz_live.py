"""Nasty requests to a live Orthanc (hypothesis): every answer is below 500, and it survives."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import Orthanc
from tests.integration.test_bounded_input import alive
from tests.unit.test_fuzz_parsers import (
    ACCEPTS,
    BOUNDARY,
    JSON_VALUES,
    MULTIPART_BODIES,
    NUMBERS,
    QIDO_NAMES,
    QIDO_VALUES,
    XML_BODIES,
)

# Header values stay ASCII: plugin 4.0's C code answers 500 before the plugin runs when a header
# is not UTF-8 ("Cannot create a Python string"); nothing in Python can change that.
HEADER_VALUES = ACCEPTS.map(lambda text: text.encode("ascii", "ignore").decode().strip())
LIVE = settings(settings.get_profile("fuzz"), max_examples=25, deadline=10_000)
ROOT = "/dicom-web"
CONTENT_TYPES = st.sampled_from(
    [
        f"multipart/related; type=application/dicom; boundary={BOUNDARY}",
        f'multipart/related; type="application/dicom+json"; boundary="{BOUNDARY}"',
        f"multipart/related; type=application/dicom+xml; boundary={BOUNDARY}",
        f"multipart/related; boundary={BOUNDARY}",
        "multipart/related",
        "application/dicom",
        "",
    ]
)


def no_server_error(answer) -> None:
    assert answer.status_code < 500 or answer.status_code in (502, 503), (
        answer.status_code,
        answer.text[:300],
    )


@pytest.fixture(scope="module")
def target(orthanc: Orthanc, test_files: dict[str, Path]) -> tuple[Orthanc, str]:
    """The Orthanc, and the WADO-RS path of one stored multi-frame instance."""
    (stored,) = orthanc.upload([test_files["ct"]])
    tags = orthanc.get(f"/instances/{stored['ID']}/tags?short").json()
    path = f"{ROOT}/studies/{tags['0020,000d']}/series/{tags['0020,000e']}"
    assert orthanc.put(f"{ROOT}/servers/nowhere", json=["http://127.0.0.1:9/"]).ok
    return orthanc, f"{path}/instances/{tags['0008,0018']}"


@LIVE
@given(MULTIPART_BODIES, CONTENT_TYPES, HEADER_VALUES)
def test_stow_rs(target: tuple[Orthanc, str], body: bytes, content_type: str, accept: str) -> None:
    orthanc, _ = target
    headers = {"Content-Type": content_type, "Accept": accept}
    no_server_error(orthanc.post(f"{ROOT}/studies", data=body, headers=headers))


@LIVE
@given(XML_BODIES, st.recursive(JSON_VALUES, lambda c: st.lists(c, max_size=3), max_leaves=5))
def test_stow_rs_metadata(target: tuple[Orthanc, str], xml: str, value: object) -> None:
    orthanc, _ = target
    for media, payload in (("dicom+xml", xml.encode()), ("dicom+json", repr(value).encode())):
        body = b"--%s\r\nContent-Type: application/%s\r\n\r\n%s\r\n--%s--\r\n" % (
            BOUNDARY.encode(),
            media.encode(),
            payload,
            BOUNDARY.encode(),
        )
        content_type = f"multipart/related; type=application/{media}; boundary={BOUNDARY}"
        answer = orthanc.post(f"{ROOT}/studies", data=body, headers={"Content-Type": content_type})
        no_server_error(answer)


@LIVE
@given(
    st.dictionaries(QIDO_NAMES, QIDO_VALUES, max_size=4),
    st.sampled_from(["studies", "series", "instances"]),
)
def test_qido_rs(target: tuple[Orthanc, str], parameters: dict[str, str], level: str) -> None:
    orthanc, _ = target
    query = urllib.parse.urlencode(parameters)
    no_server_error(orthanc.get(f"{ROOT}/{level}?{query}"))


@LIVE
@given(NUMBERS, HEADER_VALUES, st.text(alphabet="bytes=0123456789-,", max_size=20))
def test_wado_rs(target: tuple[Orthanc, str], numbers: str, accept: str, byte_range: str) -> None:
    orthanc, instance = target
    quoted = urllib.parse.quote(numbers, safe="")
    headers = {"Accept": accept, "Range": byte_range}
    for path in (
        f"{instance}/frames/{quoted}",
        f"{instance}/frames/1/rendered?quality={quoted}&viewport={quoted}&window={quoted}",
        f"{instance}/bulk/{quoted}",
        f"{instance}/bulk/7FE00010",
        f"{instance}/metadata",
    ):
        no_server_error(orthanc.get(path, headers=headers))


@LIVE
@given(st.binary(max_size=200) | JSON_VALUES.map(lambda v: repr(v).encode()))
def test_client_routes(target: tuple[Orthanc, str], body: bytes) -> None:
    orthanc, _ = target
    for path in ("servers/nowhere/get", "servers/nowhere/qido", "servers/nowhere/retrieve"):
        no_server_error(orthanc.post(f"{ROOT}/{path}", data=body))
    no_server_error(orthanc.put(f"{ROOT}/servers/fuzzed", data=body))


def test_it_is_still_alive(target: tuple[Orthanc, str]) -> None:
    orthanc, instance = target
    assert alive(orthanc)
    assert orthanc.get(f"{instance}/metadata").status_code == 200
