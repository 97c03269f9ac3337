"""WADO-RS "Retrieve Frames" (PS3.18 10.4.1.1.3): `.../instances/{uid}/frames/{list}`.

Frames in the stored syntax come straight from the core (`/instances/{id}/frames/{n}/raw`,
which already gives native pixel data in little endian, big endian files included). Frames in
another syntax come from the instance transcoded by the core, cut into frames with pydicom.
The answer is built whole (frames are small) so that every part can carry its media type and
`transfer-syntax` parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from io import BytesIO
from typing import Any

import pydicom
from pydicom.encaps import generate_frames
from pydicom.pixels.utils import get_expected_length

from .config import Configuration
from .core import Core, CoreError, get_json
from .errors import bad_request
from .multipart import encode_multipart, multipart_content_type, new_boundary
from .resources import ResourcePath
from .transfer_syntax import (
    EXPLICIT_LITTLE_ENDIAN,
    IMPLICIT_LITTLE_ENDIAN,
    NATIVE,
    FrameTarget,
    frame_targets,
)
from .wado_retrieve import find_instance, first_acceptable, transcode
from .web import Request, Response

_FRAME_NUMBER = re.compile(r"^\s*[0-9]{1,9}\s*$")
# Native pixel data read by the core comes out little endian whatever the stored syntax.
_RAW_NATIVE_SYNTAXES = frozenset({EXPLICIT_LITTLE_ENDIAN, IMPLICIT_LITTLE_ENDIAN})


def parse_frame_list(text: str) -> list[int]:
    """`1,3,5` -> [1, 3, 5]; 400 for anything but distinct numbers >= 1."""
    items = text.split(",")
    if not all(_FRAME_NUMBER.match(item) for item in items):
        raise bad_request(f"Malformed frame list {text!r}: expected numbers such as 1,3,5")
    numbers = [int(item) for item in items]
    if 0 in numbers:
        raise bad_request("Frame numbers start at 1, frame 0 does not exist")
    if len(set(numbers)) != len(numbers):
        raise bad_request(f"Frame list {text!r} repeats a frame number")
    return numbers


def check_frame_range(numbers: Sequence[int], count: int) -> None:
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise bad_request(
            f"Frame {beyond[0]} does not exist: the instance has {count} frame(s)",
            {"NumberOfFrames": count},
        )


def frames_of_file(dicom: bytes, numbers: Sequence[int]) -> list[bytes]:
    """The frames (numbered from 1) of a DICOM file's pixel data, as stored in the file."""
    dataset = pydicom.dcmread(BytesIO(dicom), force=True)
    if "PixelData" not in dataset:
        raise bad_request("The instance has no pixel data")
    count = _number_of_frames(dataset.get("NumberOfFrames"))
    check_frame_range(numbers, count)
    pixels = dataset.PixelData
    if dataset.file_meta.TransferSyntaxUID.is_encapsulated:
        frames = list(generate_frames(pixels, number_of_frames=count))
        return [frames[n - 1] for n in numbers]
    size = get_expected_length(dataset, "bytes") // count
    return [pixels[(n - 1) * size : n * size] for n in numbers]


def _number_of_frames(value: Any) -> int:
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return 1


class RetrieveFrames:
    """Retrieve Frames, in the stored media type, uncompressed, or transcoded on request."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.core = core

    def retrieve_frames(self, request: Request) -> Response:
        path = ResourcePath.from_groups(request.groups[:3])
        numbers = parse_frame_list(request.groups[3])
        instance = find_instance(self.core, path)
        check_frame_range(
            numbers, _number_of_frames(instance["MainDicomTags"].get("NumberOfFrames"))
        )
        metadata = get_json(self.core, f"/instances/{instance['ID']}/metadata?expand")
        if "PixelDataOffset" not in metadata:
            raise bad_request(f"Instance {path.instance} has no pixel data, hence no frames")
        stored = metadata.get("TransferSyntax", EXPLICIT_LITTLE_ENDIAN)
        return first_acceptable(
            frame_targets(request.header("accept"), stored),
            lambda target: _multipart(
                self._frames(instance["ID"], numbers, stored, target), target
            ),
        )

    def _frames(
        self, instance_id: str, numbers: Sequence[int], stored: str, target: FrameTarget
    ) -> list[bytes]:
        if _core_reads_directly(stored, target.syntax):
            try:
                return [self._raw_frame(instance_id, n) for n in numbers]
            except CoreError:
                if stored not in NATIVE:
                    raise
                # e.g. YBR_FULL_422, whose frame size the core gets wrong: cut them ourselves.
        return frames_of_file(transcode(self.core, instance_id, target.syntax), numbers)

    def _raw_frame(self, instance_id: str, number: int) -> bytes:
        return self.core.get(f"/instances/{instance_id}/frames/{number - 1}/raw")


def _core_reads_directly(stored: str, wanted: str) -> bool:
    if stored in NATIVE:
        return wanted in _RAW_NATIVE_SYNTAXES
    return stored == wanted


def _multipart(frames: list[bytes], target: FrameTarget) -> Response:
    boundary = new_boundary()
    body = encode_multipart(((frame, target.part_content_type, None) for frame in frames), boundary)
    content_type = multipart_content_type(
        target.media_type, boundary, {"transfer-syntax": target.syntax}
    )
    return Response(body, content_type)
