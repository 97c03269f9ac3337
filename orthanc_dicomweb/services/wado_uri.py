"""WADO-URI (PS3.18 chapter 9): `GET {WadoRoot}?requestType=WADO&objectUID=...`.

Images are rendered by the same `Renderer` as Retrieve Rendered, grayscale windows in the
arithmetic of the core's `/rendered` (the official plugin answers WADO-URI with the core's
rendering: the same request gives the same pixels); `application/dicom` answers the stored
file, transcoded (`transferSyntax`) or anonymized (`anonymize=yes`) by the core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..config import Configuration
from ..dicom import image_output
from ..dicom.image_output import Region, RenderOptions
from ..errors import HttpError, bad_request, not_found
from ..http.web import Request, Response
from ..orthanc.core import Core
from ..orthanc.resources import validate_uid
from ..orthanc.stored_instances import ParsedFiles
from ..orthanc.transcoding import transcode
from .rendered import Instance, Renderer

DICOM = "application/dicom"
CONTENT_TYPES = (*image_output.IMAGE_MEDIA_TYPES, DICOM, *image_output.DOCUMENT_MEDIA_TYPES)
# Names in use besides the registered ones (the official plugin accepts image/jpg).
CONTENT_TYPE_ALIASES = {"image/jpg": "image/jpeg"}
UNSUPPORTED = ("presentationUID", "presentationSeriesUID")


class WadoUri:
    """The WADO-URI service at `WadoRoot`."""

    def __init__(self, config: Configuration, core: Core, files: ParsedFiles | None = None) -> None:
        self.core = core
        self.renderer = Renderer(config, core, files)

    def retrieve(self, request: Request) -> Response:
        query = request.query
        if query.get("requestType") != "WADO":
            raise bad_request("WADO-URI needs requestType=WADO")
        for name in UNSUPPORTED:
            if name in query:
                raise bad_request(f"WADO-URI parameter {name} (presentation state) is unsupported")
        content_type = parse_content_type(query.get("contentType"))
        instance = self.locate(query)
        if content_type == DICOM:
            return Response(self._dicom(instance.orthanc_id, query), DICOM)
        if "transferSyntax" in query or "anonymize" in query:
            raise bad_request("transferSyntax and anonymize apply to contentType=application/dicom")
        options = parse_image_options(query, content_type)
        frame = query.get("frameNumber")
        frames = None if frame is None else [_positive(frame, "frameNumber")]
        return self.renderer.render(instance, options, frames)

    def locate(self, query: Mapping[str, str]) -> Instance:
        """The object's header; 404 when unknown, 400 when the given study or series is not
        its own."""
        if not query.get("objectUID"):
            raise bad_request("WADO-URI needs objectUID")
        sop_uid = validate_uid(query["objectUID"], "objectUID")
        series, study = _optional_uid(query, "seriesUID"), _optional_uid(query, "studyUID")
        orthanc_id = self.renderer.instances.lookup(sop_uid)
        if orthanc_id is None:
            raise not_found(f"No instance with SOPInstanceUID {sop_uid}")
        instance = self.renderer.instances.load(orthanc_id)
        if not instance.belongs_to(study, series):
            raise bad_request("The object does not belong to the given studyUID / seriesUID")
        return instance

    def _dicom(self, orthanc_id: str, query: Mapping[str, str]) -> bytes:
        syntax = query.get("transferSyntax")
        if syntax is not None:
            validate_uid(syntax, "transferSyntax")
        anonymize = _yes_no(query.get("anonymize", "no"), "anonymize")
        base = f"/instances/{orthanc_id}"
        if anonymize and syntax:
            raise bad_request("anonymize=yes cannot be combined with transferSyntax")
        if anonymize:
            return self.core.post(base + "/anonymize", b"{}")
        if syntax:
            try:
                return transcode(self.core, orthanc_id, syntax)
            except HttpError as error:  # a WADO-URI parameter value it cannot honour: 400
                raise bad_request(f"Unsupported transferSyntax {syntax!r}", error.message) from None
        return self.core.get(base + "/file")


def parse_content_type(text: str | None) -> str:
    """The first supported type of `contentType` (a comma-separated list); image/jpeg if absent."""
    if text is None or not text.strip():
        return "image/jpeg"
    for candidate in text.split(","):
        media = candidate.split(";")[0].strip().lower()
        media = CONTENT_TYPE_ALIASES.get(media, media)
        if media in CONTENT_TYPES:
            return media
    raise bad_request(f"Unsupported contentType {text!r}; supported: {', '.join(CONTENT_TYPES)}")


def parse_image_options(query: Mapping[str, str], media_type: str) -> RenderOptions:
    """rows, columns, region, windowCenter/windowWidth, imageQuality, annotation."""
    options = RenderOptions(media_type=media_type, core_windowing=True)
    rows = _positive(query["rows"], "rows") if "rows" in query else None
    columns = _positive(query["columns"], "columns") if "columns" in query else None
    if rows or columns:
        options = replace(options, fit=(columns or 1 << 16, rows or 1 << 16))
    if "region" in query:
        options = replace(options, region=parse_region(query["region"]))
    if ("windowCenter" in query) != ("windowWidth" in query):
        raise bad_request("windowCenter and windowWidth must be given together")
    if "windowCenter" in query:
        window = image_output.parse_window(f"{query['windowCenter']},{query['windowWidth']}")
        options = replace(options, window=window)
    if "imageQuality" in query:
        options = replace(options, quality=image_output.parse_quality(query["imageQuality"]))
    if "annotation" in query:
        options = replace(options, annotations=image_output.parse_annotations(query["annotation"]))
    return options


def parse_region(text: str) -> Region:
    """`x1,y1,x2,y2` as fractions of the image, top-left to bottom-right."""
    try:
        left, top, right, bottom = (float(v) for v in text.split(","))
    except ValueError:
        raise bad_request(f"region must be four numbers x1,y1,x2,y2, not {text!r}") from None
    if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
        raise bad_request(f"region must satisfy 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1: {text!r}")
    return Region(left, top, right, bottom)


def _positive(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"{name} must be an integer, not {text!r}") from None
    if value < 1:
        raise bad_request(f"{name} must be at least 1, not {value}")
    return value


def _optional_uid(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    return validate_uid(value, name) if value else None


def _yes_no(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value not in ("yes", "no"):
        raise bad_request(f"{name} must be yes or no, not {text!r}")
    return value == "yes"
