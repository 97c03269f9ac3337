"""Instances rewritten by the core in another transfer syntax, for the services that answer
a syntax the client asked for (retrieve, frames, WADO-URI)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TypeVar

from ..dicom.transfer_syntax import TRANSCODABLE, UNSAFE_TO_WRITE, syntax_of_file
from ..errors import HttpError, not_acceptable
from .core import Core, CoreError, DicomTranscoding
from .stored_instances import InstanceReader

Target = TypeVar("Target")
Answer = TypeVar("Answer")

_WRITABLE = (
    f"Transfer syntaxes other than the stored one: {', '.join(sorted(TRANSCODABLE))}; never "
    f"JPEG-LS ({', '.join(sorted(UNSAFE_TO_WRITE))}), whose encoder crashes Orthanc 1.10.1"
)


def transcode(core: Core, instance_id: str, syntax: str, stored: bytes | None = None) -> bytes:
    """The instance rewritten by the core in another transfer syntax, UIDs unchanged; else 406
    (also, without asking the core, for a syntax whose encoder crashes it).

    `stored` is its file when the caller has read it already. A core that transcodes in memory
    does it from the file (~40% faster than `/modify`, which runs the modification pipeline).
    """
    if syntax in UNSAFE_TO_WRITE:
        return _stored_in(core, instance_id, syntax, stored)
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


def _stored_in(core: Core, instance_id: str, syntax: str, stored: bytes | None) -> bytes:
    """The file when it is stored in `syntax` already; else 406, without asking the core to
    encode in a syntax whose encoder crashes it (README, Limits)."""
    dicom = InstanceReader(core).file(instance_id) if stored is None else stored
    if syntax_of_file(dicom) == syntax:
        return dicom
    raise not_acceptable(
        f"Transfer syntax {syntax} (JPEG-LS) is not produced from another one: the JPEG-LS "
        "encoder of Orthanc 1.10.1 crashes the server on some images; ask for another syntax, "
        "or for transfer-syntax=* (as stored)"
    )


def first_acceptable(candidates: Iterable[Target], produce: Callable[[Target], Answer]) -> Answer:
    """`produce` of the first candidate it does not refuse with 406; else the last 406."""
    refusal = not_acceptable("None of the accepted media types can be produced", _WRITABLE)
    for candidate in candidates:
        try:
            return produce(candidate)
        except HttpError as error:
            if error.status != 406:
                raise
            refusal = error  # e.g. the core cannot transcode to it: try the next one
    raise refusal
