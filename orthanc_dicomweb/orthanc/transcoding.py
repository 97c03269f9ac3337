"""Instances rewritten by the core in another transfer syntax, for the services that answer
a syntax the client asked for (retrieve, frames, WADO-URI)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TypeVar

from ..errors import HttpError, not_acceptable
from .core import Core, CoreError, DicomTranscoding
from .stored_instances import InstanceReader

Target = TypeVar("Target")
Answer = TypeVar("Answer")


def transcode(core: Core, instance_id: str, syntax: str, stored: bytes | None = None) -> bytes:
    """The instance rewritten by the core in another transfer syntax, UIDs unchanged; else 406.

    `stored` is its file when the caller has read it already. A core that transcodes in memory
    does it from the file (~40% faster than `/modify`, which runs the modification pipeline).
    """
    try:
        if isinstance(core, DicomTranscoding):
            dicom = InstanceReader(core).file(instance_id) if stored is None else stored
            return core.transcode(dicom, syntax)
        request = {"Transcode": syntax, "Keep": ["SOPInstanceUID"], "Force": True}
        return core.post(f"/instances/{instance_id}/modify", json.dumps(request).encode())
    except CoreError as error:
        raise not_acceptable(
            f"Orthanc cannot transcode instance {instance_id} to transfer syntax {syntax}",
            error.message,
        ) from None


def first_acceptable(candidates: Iterable[Target], produce: Callable[[Target], Answer]) -> Answer:
    """`produce` of the first candidate it does not refuse with 406; else the last 406."""
    refusal = not_acceptable("None of the accepted media types can be produced")
    for candidate in candidates:
        try:
            return produce(candidate)
        except HttpError as error:
            if error.status != 406:
                raise
            refusal = error  # e.g. the core cannot transcode to it: try the next one
    raise refusal
