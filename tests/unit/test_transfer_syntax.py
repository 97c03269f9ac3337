"""Transfer syntax negotiation for instances and frames, and reading a file's syntax."""

from __future__ import annotations

from io import BytesIO

import pydicom
import pytest

from orthanc_dicomweb.dicom.transfer_syntax import (
    EXPLICIT_BIG_ENDIAN,
    EXPLICIT_LITTLE_ENDIAN,
    RLE,
    TRANSCODABLE,
    UNSAFE_TO_WRITE,
    FrameTarget,
    InstanceTarget,
    frame_targets,
    instance_targets,
    syntax_of_file,
)
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.orthanc.transcoding import transcode
from tests.fake_core import FakeCore, TranscodingMixin
from tests.harness import PYDICOM_FILES
from tests.unit.fakes import http_error

JPEG_LS = "1.2.840.10008.1.2.4.80"
JPEG_2000 = "1.2.840.10008.1.2.4.90"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"


@pytest.mark.parametrize(
    ("accept", "syntax"),
    [
        (None, EXPLICIT_LITTLE_ENDIAN),
        ("*/*", EXPLICIT_LITTLE_ENDIAN),
        ('multipart/related; type="application/dicom"', EXPLICIT_LITTLE_ENDIAN),
        ("multipart/related; type=application/dicom", EXPLICIT_LITTLE_ENDIAN),
        ("multipart/related", EXPLICIT_LITTLE_ENDIAN),
        ('multipart/related; type="application/dicom"; transfer-syntax=*', None),
        ("multipart/related;type=application/dicom;transfer-syntax=*", None),
        ('Multipart/Related ; Type = "application/dicom" ; transfer-syntax = "*"', None),
        ("multipart/related; type=application/dicom; transfer-syntax=" + JPEG_LS, JPEG_LS),
        ('multipart/related; type="*/*"; transfer-syntax=*', None),
    ],
)
def test_instance_accept_forms(accept: str | None, syntax: str | None) -> None:
    assert instance_targets(accept)[0] == InstanceTarget(syntax)


def test_instance_targets_follow_q_values_and_skip_what_cannot_be_served() -> None:
    accept = (
        "image/png, multipart/related; type=application/dicom; transfer-syntax=*; q=0.5, "
        f"multipart/related; type=application/dicom; transfer-syntax={JPEG_2000}; q=0.9, "
        "multipart/related; type=application/dicom; transfer-syntax=1.2.3.4; q=1"
    )
    assert instance_targets(accept) == [InstanceTarget(JPEG_2000), InstanceTarget(None)]


@pytest.mark.parametrize(
    "accept",
    [
        "image/png",
        'multipart/related; type="application/octet-stream"',
        "multipart/related; type=application/dicom; transfer-syntax=1.2.3.4",
        "multipart/related; type=application/dicom; q=0",
        "application/dicom+json",
    ],
)
def test_instance_accept_that_cannot_be_served_is_406(accept: str) -> None:
    assert http_error(instance_targets, accept).status == 406


def test_malformed_accept_items_are_skipped() -> None:
    accept = "multipart/related; type=application/dicom; q=high, multipart/related"
    assert instance_targets(accept) == [InstanceTarget(EXPLICIT_LITTLE_ENDIAN)]
    with pytest.raises(HttpError):
        instance_targets("multipart/related; type=application/dicom; q=high")


def test_needs_transcoding_only_when_the_syntax_differs() -> None:
    assert not InstanceTarget(None).needs_transcoding(JPEG_LS)
    assert not InstanceTarget(JPEG_LS).needs_transcoding(JPEG_LS)
    assert InstanceTarget(EXPLICIT_LITTLE_ENDIAN).needs_transcoding(JPEG_LS)


OCTET = "application/octet-stream"


@pytest.mark.parametrize(
    ("accept", "stored", "expected"),
    [
        (None, JPEG_LS, FrameTarget(OCTET, EXPLICIT_LITTLE_ENDIAN)),
        (None, EXPLICIT_BIG_ENDIAN, FrameTarget(OCTET, EXPLICIT_LITTLE_ENDIAN)),
        ('multipart/related; type="*/*"', RLE, FrameTarget("image/x-dicom-rle", RLE)),
        (
            "multipart/related; type=application/octet-stream",
            JPEG_LS,
            FrameTarget(OCTET, EXPLICIT_LITTLE_ENDIAN),
        ),
        (
            'multipart/related; type="application/octet-stream"; transfer-syntax=*',
            JPEG_LS,
            FrameTarget(OCTET, JPEG_LS),
        ),
        (
            'multipart/related; type="application/octet-stream"; transfer-syntax=*',
            "1.2.840.10008.1.2",
            FrameTarget(OCTET, EXPLICIT_LITTLE_ENDIAN),
        ),
        (
            "multipart/related; type=application/octet-stream; transfer-syntax="
            + EXPLICIT_LITTLE_ENDIAN,
            JPEG_LS,
            FrameTarget(OCTET, EXPLICIT_LITTLE_ENDIAN),
        ),
        ('multipart/related; type="image/jpeg"', JPEG_LS, FrameTarget("image/jpeg", JPEG_LOSSLESS)),
        (
            "multipart/related; type=image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50",
            EXPLICIT_LITTLE_ENDIAN,
            FrameTarget("image/jpeg", "1.2.840.10008.1.2.4.50"),
        ),
        ("multipart/related; type=image/dicom-rle", JPEG_LS, FrameTarget("image/x-dicom-rle", RLE)),
        ("multipart/related; type=image/jls", JPEG_LS, FrameTarget("image/jls", JPEG_LS)),
        (
            "multipart/related; type=image/jls",
            "1.2.840.10008.1.2.4.81",
            FrameTarget("image/jls", "1.2.840.10008.1.2.4.81"),
        ),
        ("*/*", JPEG_2000, FrameTarget(OCTET, EXPLICIT_LITTLE_ENDIAN)),
        ("multipart/related; type=image/*", JPEG_2000, FrameTarget("image/jp2", JPEG_2000)),
        ('multipart/related; type=""', JPEG_LS, FrameTarget(OCTET, EXPLICIT_LITTLE_ENDIAN)),
    ],
)
def test_frame_accept_forms(accept: str | None, stored: str, expected: FrameTarget) -> None:
    assert frame_targets(accept, stored)[0] == expected


def test_any_frame_is_uncompressed_else_as_stored() -> None:
    for accept in (None, "*/*"):
        assert frame_targets(accept, JPEG_2000) == [
            FrameTarget(OCTET, EXPLICIT_LITTLE_ENDIAN),
            FrameTarget("image/jp2", JPEG_2000),
        ]
    assert frame_targets(None, EXPLICIT_LITTLE_ENDIAN) == [
        FrameTarget(OCTET, EXPLICIT_LITTLE_ENDIAN)
    ]


def test_frame_targets_keep_the_q_order() -> None:
    accept = (
        "multipart/related; type=application/octet-stream; q=0.2, "
        'multipart/related; type="image/jls"; q=0.8'
    )
    assert frame_targets(accept, EXPLICIT_LITTLE_ENDIAN) == [
        FrameTarget("image/jls", JPEG_LS),
        FrameTarget(OCTET, EXPLICIT_LITTLE_ENDIAN),
    ]


@pytest.mark.parametrize(
    "accept",
    [
        "image/jpeg",  # single part: not offered
        "multipart/related; type=image/jpeg; transfer-syntax=" + JPEG_LS,  # mismatch
        "multipart/related; type=application/octet-stream; transfer-syntax=" + EXPLICIT_BIG_ENDIAN,
        "multipart/related; type=application/dicom",
        "multipart/related; type=text/plain",
        "multipart/related; type=jpeg",
        "multipart/related; type=image/*",  # the stored syntax is native: no image to send
    ],
)
def test_frame_accept_that_cannot_be_served_is_406(accept: str) -> None:
    assert http_error(frame_targets, accept, EXPLICIT_LITTLE_ENDIAN).status == 406


def test_part_content_type_names_the_syntax() -> None:
    assert (
        FrameTarget("image/jls", JPEG_LS).part_content_type
        == f"image/jls; transfer-syntax={JPEG_LS}"
    )


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("CT_small.dcm", EXPLICIT_LITTLE_ENDIAN),
        ("MR_small_bigendian.dcm", EXPLICIT_BIG_ENDIAN),
        ("MR_small_jpeg_ls_lossless.dcm", JPEG_LS),
        ("SC_rgb_rle_2frame.dcm", RLE),
    ],
)
def test_syntax_of_file_reads_the_meta_header(name: str, syntax: str) -> None:
    assert syntax_of_file((PYDICOM_FILES / name).read_bytes()) == syntax


def test_syntax_of_file_without_meta_header_is_none() -> None:
    assert syntax_of_file(b"\0" * 200) is None
    assert syntax_of_file(b"") is None
    without_preamble = (PYDICOM_FILES / "CT_small.dcm").read_bytes()[132:]
    assert syntax_of_file(without_preamble) is None


# --- Syntaxes never asked of the core (its encoder crashes it; README, Limits) ----------------

JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"


class TranscodingCore(TranscodingMixin, FakeCore):
    """A core that transcodes in memory, like the SDK's TranscodeDicomInstance."""


def test_jpeg_ls_is_not_listed_as_transcodable() -> None:
    assert {JPEG_LS, JPEG_LS_NEAR_LOSSLESS} <= UNSAFE_TO_WRITE
    assert not UNSAFE_TO_WRITE & TRANSCODABLE


@pytest.mark.parametrize("core_type", [FakeCore, TranscodingCore], ids=["modify", "in-memory"])
@pytest.mark.parametrize("syntax", [JPEG_LS, JPEG_LS_NEAR_LOSSLESS])
def test_jpeg_ls_is_refused_without_asking_the_core(core_type: type[FakeCore], syntax: str) -> None:
    dicom = (PYDICOM_FILES / "SC_rgb_small_odd.dcm").read_bytes()
    core = core_type(files=[dicom])
    instance_id = core.id_of(pydicom.dcmread(PYDICOM_FILES / "SC_rgb_small_odd.dcm").SOPInstanceUID)
    error = http_error(transcode, core, instance_id, syntax)
    assert error.status == 406 and "JPEG-LS" in error.message
    assert core.transcodings == 0
    assert not [uri for _, uri, _ in core.calls if "transcode" in uri or "modify" in uri]


def test_an_instance_stored_in_jpeg_ls_is_sent_as_stored() -> None:
    dicom = (PYDICOM_FILES / "MR_small_jpeg_ls_lossless.dcm").read_bytes()
    core = TranscodingCore(files=[dicom])
    instance_id = core.id_of(pydicom.dcmread(BytesIO(dicom)).SOPInstanceUID)
    assert transcode(core, instance_id, JPEG_LS) == dicom
    assert core.transcodings == 0
