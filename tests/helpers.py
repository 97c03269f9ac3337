"""Helpers shared by the tests: DICOM files derived from pydicom's, storing them in a live
Orthanc, waiting for a condition, and reading multipart answers with a parser of our own
choosing (Python's `email` package), independent of the plugin's, so that a bug shared by the
plugin's encoder and parser cannot hide."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path
from typing import Any, TypeVar

import pydicom
import requests
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from tests.harness import Orthanc

T = TypeVar("T")


def derived(
    source: Path | bytes,
    study: str | None = None,
    series: str | None = None,
    *,
    drop: Iterable[str] = (),
    **attributes: Any,
) -> bytes:
    """A copy of a DICOM file with a new SOP Instance UID, in the given study and series (new
    ones when not given: pydicom's test files share theirs), with these attributes set and the
    `drop` ones removed (the copy is then written as it is, not as a valid Part 10 file)."""
    data = io.BytesIO(source) if isinstance(source, bytes) else source
    dataset = pydicom.dcmread(data, force=True)  # some test files have no file meta
    dataset.file_meta.setdefault("TransferSyntaxUID", ImplicitVRLittleEndian)
    dataset.StudyInstanceUID = study or generate_uid()
    dataset.SeriesInstanceUID = series or generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    for keyword in drop:
        delattr(dataset, keyword)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=not drop)
    return buffer.getvalue()


def store(orthancs: Orthanc | Iterable[Orthanc], files: Iterable[bytes]) -> list[dict[str, Any]]:
    """Store the files through the core's REST API of each Orthanc; the core's answers (of the
    last Orthanc)."""
    servers = [orthancs] if isinstance(orthancs, Orthanc) else list(orthancs)
    files = list(files)
    answers: list[dict[str, Any]] = []
    for server in servers:
        answers = []
        for data in files:
            response = server.post("/instances", data=data)
            response.raise_for_status()
            answers.append(response.json())
    return answers


def wait_for(condition: Callable[[], T], timeout: float = 30, interval: float = 0.1) -> T:
    """The condition's first true value, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)


@dataclass(frozen=True)
class Part:
    """One part of a multipart answer: its headers and its bytes."""

    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def multipart_parts(content_type: str, body: bytes) -> list[Part]:
    """The parts of a multipart body, read by the `email` package (RFC 2046); part headers are
    kept as sent (the compat32 policy does not rewrite them)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=compat32).parsebytes(head + body)
    assert message.is_multipart(), content_type
    assert not message.defects, message.defects
    parts = []
    for part in message.get_payload():
        assert isinstance(part, Message)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts.append(Part({k.lower(): v for k, v in part.items()}, payload))
    return parts


def multipart_body(parts: Iterable[bytes], boundary: str, part_type: str) -> bytes:
    """A multipart body written here by hand (RFC 2046), not by the plugin's encoder."""
    head = f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode()
    body = b"".join(head + part + b"\r\n" for part in parts)
    return body + f"--{boundary}--\r\n".encode()


def parts(answer: requests.Response, media_type: str = "multipart/related") -> list[Part]:
    """The parts of a successful multipart answer."""
    assert answer.status_code == 200, answer.text[:300]
    content_type = answer.headers["Content-Type"]
    assert content_type.startswith(media_type), content_type
    return multipart_parts(content_type, answer.content)


def parts_of(answer: requests.Response, part_type: str | None = None) -> list[bytes]:
    """The bytes of each part of a successful multipart/related answer (whose `type` parameter
    names `part_type`, when given)."""
    if part_type is not None:
        assert part_type in answer.headers.get("Content-Type", ""), answer.headers
    return [part.body for part in parts(answer)]
