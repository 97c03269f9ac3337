"""WADO-RS Retrieve Study / Series as a ZIP (`Accept: application/zip`, PS3.18 8.7.4).

The instances are negotiated like the multipart form (`application/zip; transfer-syntax=...`,
none meaning Explicit VR Little Endian, `*` the stored syntaxes) and named
`{SeriesInstanceUID}/{SOPInstanceUID}.dcm`. Plugin 4.0 can stream an answer only as multipart
parts, so the archive is written to an anonymous temporary file, one instance in memory at a
time, and handed to the core as a memory map of that file: the plugin never holds the study in
its memory (the kernel pages the file in as the core sends it). The core itself gzips answers
when the client accepts it and `HttpCompressionEnabled` is true, which does build a copy.
"""

from __future__ import annotations

import io
import mmap
import tempfile
import zipfile
from collections.abc import Iterable

import pydicom

from ..http.negotiation import MediaType, parse_accept, quote_parameter
from ..http.web import Answer, Handler, Request, Response
from ..orthanc.resources import ResourcePath
from .retrieve import RetrieveInstances, accepted_targets

ZIP = "application/zip"
_NAME_TAGS = ["SeriesInstanceUID", "SOPInstanceUID"]


def zip_range(accept: str | None) -> MediaType | None:
    """The `application/zip` range when it ranks first among the ZIP and multipart ones."""
    for media in parse_accept(accept):
        if media.q > 0 and media.essence in (ZIP, "multipart/related"):
            return media if media.essence == ZIP else None
    return None


def as_multipart_accept(media: MediaType) -> str:
    """The equivalent multipart range, so that the syntax is negotiated the same way."""
    syntax = media.param("transfer-syntax")
    accept = 'multipart/related; type="application/dicom"'
    return accept + (f"; transfer-syntax={quote_parameter(syntax)}" if syntax else "")


def entry_name(dicom: bytes, number: int) -> str:
    dataset = pydicom.dcmread(io.BytesIO(dicom), stop_before_pixels=True, specific_tags=_NAME_TAGS)
    series = str(dataset.get("SeriesInstanceUID", "")) or "series"
    sop = str(dataset.get("SOPInstanceUID", "")) or f"instance-{number}"
    return f"{series}/{sop}.dcm"


def write_zip(files: Iterable[bytes]) -> mmap.mmap:
    """The files as a stored (uncompressed) ZIP in a temporary file, mapped in memory."""
    with tempfile.TemporaryFile(prefix="dicomweb-zip-") as spool:
        with zipfile.ZipFile(spool, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for number, dicom in enumerate(files, start=1):
                archive.writestr(entry_name(dicom, number), dicom)
        spool.flush()
        # The map outlives the file object: the unlinked file goes when the map is released.
        return mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ)


class ZipRetrieve:
    """Wraps Retrieve Study / Series: ZIP when asked, the multipart handler otherwise."""

    def __init__(self, retrieve: RetrieveInstances) -> None:
        self.retrieve = retrieve

    def handler(self, multipart: Handler) -> Handler:
        def answer(request: Request) -> Answer:
            media = zip_range(request.header("accept"))
            return multipart(request) if media is None else self._zip(request, media)

        return answer

    def _zip(self, request: Request, media: MediaType) -> Response:
        path = ResourcePath.from_groups(request.groups)
        targets = accepted_targets(as_multipart_accept(media))
        archive = write_zip(self.retrieve.files(path, targets))
        name = (path.series or path.study) + ".zip"
        disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(memoryview(archive), ZIP, 200, disposition)
