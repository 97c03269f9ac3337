"""WADO-RS "Retrieve Frames" (PS3.18 10.4.1.1.3): `.../instances/{uid}/frames/{list}`.

The instance is found through the core's SOP Instance UID index (once per request, for the
ETag too), its parents checked in its header; a file up to
`FRAMES_WHOLE_FILE_LIMIT` is read once (`stored_instances`) and frames in the stored syntax are
cut from it, larger files give their frames one at a time through the core
(`/instances/{id}/frames/{n}/raw`, native pixel data already little endian). RLE Lossless frames
asked uncompressed are decoded here (pylibjpeg-rle, ~1 ms for 512x512), so the usual requests
cost no transcoding at all. Any other syntax comes from the instance transcoded by the core,
cut into frames with pydicom; compressed frames the core cannot decode (JPEG 2000 without GDCM)
are decoded by pydicom's decoders (Pillow's OpenJPEG) when asked uncompressed.

Without an `Accept` header, or with `*/*`, frames come uncompressed (Explicit VR Little Endian),
as the official plugin sends them (README, compatibility).

The frames are made in memory before answering (they are small). Every part is labelled
`{media type}; transfer-syntax={uid}`, also the `type` of the top-level Content-Type (as the
core writes it for the official plugin). A single frame's answer is written here, so that its
part carries its `Content-Location` (`.../frames/{n}`); Orthanc gzips it when the client
accepts gzip, as it does for the official plugin (~55 ms for a 512x512 CT frame). Several
frames go through the core's multipart stream: uncompressed, without Content-Location (see
`frames_answer`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from io import BytesIO
from typing import Any

import pydicom
from pydicom.encaps import generate_frames
from pydicom.pixels.utils import get_expected_length

from ..config import Configuration
from ..dicom import header, pixel_data
from ..dicom.transfer_syntax import (
    EXPLICIT_LITTLE_ENDIAN,
    IMPLICIT_LITTLE_ENDIAN,
    NATIVE,
    RLE,
    frame_targets,
)
from ..errors import HttpError, bad_request
from ..http.frame_list import check_frame_range, parse_frame_list
from ..http.multipart import encode_multipart, multipart_content_type, new_boundary
from ..http.urls import dicomweb_base, instance_url
from ..http.web import MultipartResponse, Request, Response
from ..orthanc.core import Core, CoreError
from ..orthanc.request_scope import indexed_id
from ..orthanc.resources import ResourcePath, locate_resource
from ..orthanc.stored_instances import Instance, InstanceReader, ParsedFiles
from ..orthanc.transcoding import first_acceptable, transcode

log = logging.getLogger(__name__)

# Files up to this size are read whole and their frames cut here. Larger ones (multi-frame
# objects mostly) are read frame by frame through the core, whose parsed-file cache makes that
# cheaper: measured on a 3 MB 10-frame RLE file, 3 frames take 6 ms so, 15 ms read whole.
FRAMES_WHOLE_FILE_LIMIT = 1024 * 1024
# Native pixel data read by the core or pydicom comes out little endian whatever the syntax.
_LITTLE_ENDIAN = frozenset({EXPLICIT_LITTLE_ENDIAN, IMPLICIT_LITTLE_ENDIAN})


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


def frames_answer(
    frames: Sequence[bytes], numbers: Sequence[int], part_content_type: str, instance: str
) -> Response | MultipartResponse:
    """The multipart/related answer (`instance` is the instance's URL).

    One frame: written here, its part with its `Content-Location`. Several frames: streamed by
    the core's multipart writer, uncompressed as the official plugin sends them; plugin 4.0
    cannot give such parts a header beyond Content-Type, and a body written here would be
    gzipped by Orthanc for every client accepting gzip (10 CT frames: 324 ms instead of 9 ms).
    """
    if len(frames) > 1:
        return MultipartResponse(part_content_type, frames)
    boundary = new_boundary()
    parts = [
        (frame, part_content_type, {"Content-Location": f"{instance}/frames/{number}"})
        for frame, number in zip(frames, numbers, strict=True)
    ]
    return Response(
        encode_multipart(parts, boundary), multipart_content_type(part_content_type, boundary)
    )


def _number_of_frames(value: Any) -> int:
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return 1


def stored_syntax(instance: Instance) -> str:
    """The instance's transfer syntax; Explicit VR Little Endian when its file names none."""
    return instance.transfer_syntax or EXPLICIT_LITTLE_ENDIAN


def is_stored_form(stored: str, wanted: str) -> bool:
    """Whether frames in `wanted` are the stored frames (native ones read little endian)."""
    if stored in NATIVE:
        return wanted in _LITTLE_ENDIAN
    return stored == wanted


class RetrieveFrames:
    """Retrieve Frames, in the stored media type, uncompressed, or transcoded on request."""

    def __init__(self, config: Configuration, core: Core, files: ParsedFiles | None = None) -> None:
        self.config = config
        self.core = core
        self.instances = InstanceReader(core, FRAMES_WHOLE_FILE_LIMIT, files)

    def retrieve_frames(self, request: Request) -> Response | MultipartResponse:
        path = ResourcePath.from_groups(request.groups[:3])
        numbers = parse_frame_list(request.groups[3])
        instance = self.locate(path)
        if not header.has_pixels(instance.tags):
            raise bad_request(f"Instance {path.instance} has no pixel data, hence no frames")
        check_frame_range(numbers, instance.format.frames)
        stored = stored_syntax(instance)
        # Parts point to the frames by the UIDs the client named (validated above).
        location = instance_url(dicomweb_base(self.config, request), *request.groups[:3])
        # Frames are made before answering, so that a syntax the core cannot produce (406)
        # still lets the next acceptable one be tried.
        return first_acceptable(
            frame_targets(request.header("accept"), stored),
            lambda target: frames_answer(
                self._frames(instance, numbers, target.syntax),
                numbers,
                target.part_content_type,
                location,
            ),
        )

    def locate(self, path: ResourcePath) -> Instance:
        """The instance the path names, read; 404 if unknown or not in the named study/series
        (looked up once per request, for the ETag too: `request_scope`)."""
        orthanc_id = indexed_id(self.instances, path.instance or "")
        instance = None if orthanc_id is None else self.instances.load(orthanc_id)
        if instance is None or not instance.belongs_to(path.study, path.series):
            # The UID index names one instance per SOP UID: a duplicate under the named study
            # and series is only found by a full query (which raises 404 when there is none).
            instance = self.instances.load(locate_resource(self.core, path)["ID"])
        return instance

    def _frames(self, instance: Instance, numbers: Sequence[int], wanted: str) -> list[bytes]:
        stored = stored_syntax(instance)
        try:
            if is_stored_form(stored, wanted):
                return self._stored_frames(instance, numbers)
            if stored == RLE and wanted in _LITTLE_ENDIAN:
                return [
                    pixel_data.rle_to_native(f, instance.format)
                    for f in self._stored_frames(instance, numbers)
                ]
        except (CoreError, ValueError) as error:
            # e.g. YBR_FULL_422, whose frame size the core gets wrong, or an RLE layout
            # pylibjpeg-rle does not decode: the core's transcoder knows more.
            log.info("Frames of %s: %s; transcoding", instance.orthanc_id, error)
        try:
            return frames_of_file(transcode(self.core, instance.orthanc_id, wanted), numbers)
        except HttpError as refusal:
            if stored in NATIVE or wanted not in _LITTLE_ENDIAN:
                raise
            return self._decoded_here(instance, numbers, refusal)

    def _decoded_here(
        self, instance: Instance, numbers: Sequence[int], refusal: HttpError
    ) -> list[bytes]:
        """Compressed frames the core cannot decode (JPEG 2000 without GDCM) decoded by
        pydicom's decoders; the core's refusal when they cannot either."""
        stored, fmt = stored_syntax(instance), instance.format
        try:
            return [
                pixel_data.decode_to_native(frame, fmt, stored)
                for frame in self._stored_frames(instance, numbers)
            ]
        except (CoreError, ValueError) as error:
            log.info("Frames of %s: %s", instance.orthanc_id, error)
            raise refusal from None

    def _stored_frames(self, instance: Instance, numbers: Sequence[int]) -> list[bytes]:
        """The frames as stored (native ones little endian): cut from the file when it was
        read, else one core call each."""
        fmt, dataset = instance.format, instance.dataset
        encapsulated = stored_syntax(instance) not in NATIVE
        if dataset is not None and (encapsulated or fmt.bits_allocated % 8 == 0):
            value = header.raw_bytes(dataset, [header.PIXEL_DATA])
            if encapsulated:
                return pixel_data.encapsulated_frames(value, numbers, fmt.frames)
            return pixel_data.native_frames(value, numbers, fmt.frame_size)
        base = f"/instances/{instance.orthanc_id}/frames"
        return [self.core.get(f"{base}/{number - 1}/raw") for number in numbers]
