"""WADO-RS Retrieve Bulkdata (PS3.18 10.4.1.1.5): the BulkDataURIs of metadata answers.

`.../instances/{i}/bulk/{tag path}` names a value, at the top level (`bulk/00431028`) or in a
sequence (`bulk/00540016/1/00181072`: tag, 1-based item, tag...), as the official plugin writes
its BulkDataURIs (tags are also read as `0054,0016`). The value's bytes come from
the core's `/instances/{id}/content/...`. Pixel data is the whole native pixel data, or, when
compressed, one part per frame (each frame's compressed bytes, as dicomweb-client's
`retrieve_bulkdata` lists them).

Answers are `multipart/related; type="application/octet-stream"` (default) or one
`application/octet-stream` body; any other `Accept`, or a `range` media type parameter (the
HTTP `Range` header is the way to ask a part), is refused with 400 as the official plugin does.
HTTP `Range` (one range) is checked (416 when it cannot be
satisfied) and, for single-part answers, honoured with 206 and `Content-Range` when the runtime
can carry the bytes: plugin 4.0 sends non-200 bodies only as a C string (UTF-8, no NUL byte).
Otherwise, and for multipart answers (streamed with status 200, no per-part headers), the
whole value is sent with 200, as RFC 9110 allows a server that ignores Range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config import Configuration
from ..dicom import tags as dicom_tags
from ..dicom import transfer_syntax
from ..errors import HttpError, bad_request
from ..http import negotiation
from ..http.web import Answer, MultipartResponse, Request, Response
from ..orthanc import tags as orthanc_tags
from ..orthanc.core import Core, get_json
from ..orthanc.resources import ResourcePath, locate

OCTET_STREAM = "application/octet-stream"
_TAG = re.compile(r"^([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})$")
_INDEX = re.compile(r"^[1-9][0-9]{0,8}$")
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def parse_bulk_path(text: str) -> dicom_tags.TagPath:
    """`00540016/1/00181072` -> `(0x00540016, 0, 0x00181072)` (items 1-based in URIs, 0-based
    in tag paths; see `dicom_tags.tag_path_text`); HttpError 400 if malformed."""
    segments = text.strip("/").split("/")
    if len(segments) % 2 == 0:
        raise bad_request(f"Bulk data path must end with a tag: {text!r}")
    path: list[int] = []
    for position, segment in enumerate(segments):
        if position % 2 == 0:
            tag = _TAG.match(segment)
            if not tag:
                raise bad_request(f"Bad tag {segment!r} (8 hex digits) in bulk data path {text!r}")
            path.append(int(tag.group(1) + tag.group(2), 16))
        elif _INDEX.match(segment):
            path.append(int(segment) - 1)
        else:
            raise bad_request(f"Bad item number {segment!r} (from 1) in bulk data path {text!r}")
    return tuple(path)


def wants_single_part(accept: str | None) -> bool:
    """True for `application/octet-stream`, False for multipart (the default); else 400."""
    for media in negotiation.parse_accept(accept):
        if media.q <= 0:
            continue
        if media.essence == "multipart/related":
            if media.param("range") is not None:
                raise negotiation.refuse_accept(
                    f"Parts of bulk data are asked with the HTTP Range header, not {media}"
                )
            # dicomweb-client asks `type="*/*"` by default.
            if negotiation.multipart_type(media) in (None, OCTET_STREAM, "*/*", "application/*"):
                return False
        elif media.essence == OCTET_STREAM or media.essence == "application/*":
            return True
        elif negotiation.matches(media, "multipart/related"):
            return False
    raise negotiation.refuse_accept(
        f'Bulk data is available as multipart/related; type="{OCTET_STREAM}" or as '
        f"{OCTET_STREAM}; not as {accept}"
    )


@dataclass(frozen=True)
class ByteRange:
    """A satisfiable byte range of a value: `first` to `last` inclusive, of `size` bytes."""

    first: int
    last: int
    size: int

    @property
    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range asked (None: no Range, or one we ignore); HttpError 416 if it is
    unsatisfiable. Several ranges and other units are ignored, as RFC 9110 allows."""
    if not header:
        return None
    match = _RANGE.match(header)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    start, end = match.group(1), match.group(2)
    if start:
        first = int(start)
        if end and int(end) < first:
            return None  # an invalid range: RFC 9110 says to ignore the header
        if first >= size:
            raise _unsatisfiable(header, size)
        last = min(int(end), size - 1) if end else size - 1
    else:  # suffix range: the last N bytes
        length = int(end)
        if length == 0 or size == 0:
            raise _unsatisfiable(header, size)
        first, last = max(size - length, 0), size - 1
    return ByteRange(first, last, size)


def _unsatisfiable(header: str, size: int) -> HttpError:
    return HttpError(
        416,
        f"Range {header!r} cannot be satisfied: the value has {size} bytes",
        headers={"Content-Range": f"bytes */{size}"},
    )


def _fits_runtime_status_body(data: bytes) -> bool:
    """Whether plugin 4.0's SendHttpStatus can carry these bytes (UTF-8, no NUL)."""
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class RetrieveBulkdata:
    """The WADO-RS bulk data service."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.core = core

    def retrieve_bulkdata(self, request: Request) -> Answer:
        single = wants_single_part(request.header("accept"))
        path = ResourcePath.from_groups(request.groups[:3])
        tag_path = parse_bulk_path(request.groups[3])
        instance_id = locate(self.core, path)
        values = self._values(instance_id, tag_path)
        byte_range = None
        if len(values) == 1:  # a range of frames' concatenation would mean nothing
            byte_range = parse_range(request.header("range"), len(values[0]))
        if single and byte_range is not None:
            partial = self._partial(values[0], byte_range)
            if partial is not None:
                return partial
        if not single:
            return MultipartResponse(OCTET_STREAM, iter(values))
        if len(values) != 1:
            raise negotiation.refuse_accept(
                f"This pixel data has {len(values)} frames: ask for multipart/related; "
                f'type="{OCTET_STREAM}" to get one part per frame'
            )
        return Response(values[0], OCTET_STREAM)

    def _values(self, instance_id: str, tag_path: dicom_tags.TagPath) -> list[bytes]:
        if tag_path[-1] in dicom_tags.PIXEL_DATA_TAGS and len(tag_path) == 1:
            return self._pixel_data(instance_id, tag_path)
        if dicom_tags.vr_of(tag_path[-1]) == "SQ":
            raise bad_request(
                f"{dicom_tags.tag_path_text(tag_path)} is a sequence, not bulk data: "
                "its items are in the metadata"
            )
        return [self.core.get(self._content_uri(instance_id, tag_path))]

    def _pixel_data(self, instance_id: str, tag_path: dicom_tags.TagPath) -> list[bytes]:
        syntax = self.core.get(f"/instances/{instance_id}/metadata/TransferSyntax").decode()
        if syntax.strip() in transfer_syntax.NATIVE:
            # The core lists native pixel data as one item, "0": the whole value.
            return [self.core.get(self._content_uri(instance_id, tag_path) + "/0")]
        frames = get_json(self.core, f"/instances/{instance_id}/frames")
        return [self.core.get(f"/instances/{instance_id}/frames/{f}/raw") for f in frames]

    @staticmethod
    def _content_uri(instance_id: str, tag_path: dicom_tags.TagPath) -> str:
        return f"/instances/{instance_id}/content/{orthanc_tags.orthanc_content_path(tag_path)}"

    @staticmethod
    def _partial(value: bytes, byte_range: ByteRange) -> Response | None:
        data = value[byte_range.first : byte_range.last + 1]
        if not _fits_runtime_status_body(data):
            return None
        headers = {"Content-Range": byte_range.content_range, "Accept-Ranges": "bytes"}
        return Response(data, OCTET_STREAM, 206, headers)
