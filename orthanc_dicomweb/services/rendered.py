"""Retrieve Rendered and Retrieve Thumbnail (PS3.18 8.3.5 and Supplement 203).

Study and series levels render a representative instance: the middle instance (by
InstanceNumber, the first of the two middle ones) of the first image series (by SeriesNumber).
An instance file up to `stored_instances.WHOLE_FILE_LIMIT` is read once and parsed by pydicom
for the rendering tags only: header, LUTs, native and RLE pixels then come from that one call
(about half the cost of the core's `/tags` JSON); larger files are read through `/tags?short`
and `/frames/{n}/raw`.
Other compressed pixels are decoded by the core (`/frames/{n}/numpy`), by pydicom's decoders
(Pillow's OpenJPEG) when the core cannot (JPEG 2000 without GDCM).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from ..config import Configuration
from ..dicom import header, image_output, pixel_data, rendering, transfer_syntax
from ..dicom.header import PixelFormat, tag_text
from ..dicom.image_output import RenderOptions
from ..dicom.pixel_data import decode_frame
from ..errors import HttpError, bad_request, not_acceptable, not_found
from ..http.frame_list import parse_frame_list
from ..http.negotiation import choose, parse_accept
from ..http.web import Request, Response
from ..orthanc.core import Core, CoreError, get_json
from ..orthanc.resources import ResourcePath, locate
from ..orthanc.stored_instances import Instance, InstanceReader, ParsedFiles

log = logging.getLogger(__name__)

# The core hands frames of these out in little endian (DCMTK swaps big endian on load).
# Pixel data read by the plugin itself (deflated files go through the core).
NATIVE_SYNTAXES = frozenset(
    {
        transfer_syntax.IMPLICIT_LITTLE_ENDIAN,
        transfer_syntax.EXPLICIT_LITTLE_ENDIAN,
        transfer_syntax.EXPLICIT_BIG_ENDIAN,
    }
)
VIDEO_SYNTAXES = {
    **dict.fromkeys(("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"), "video/mpeg"),
    **dict.fromkeys((f"1.2.840.10008.1.2.4.{n}" for n in range(102, 109)), "video/mp4"),
}
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
NON_IMAGE_MODALITIES = frozenset({"SR", "PR", "KO", "DOC", "RTPLAN", "RTSTRUCT", "RTRECORD", "REG"})
THUMBNAIL_SIZE = (128, 128)


def document_media_type(instance: Instance) -> str | None:
    """`application/pdf` or a video type when the instance is returned as-is, else None."""
    if instance.sop_class == ENCAPSULATED_PDF:
        return "application/pdf"
    return VIDEO_SYNTAXES.get(instance.transfer_syntax)


class Renderer:
    """Turns one stored instance into an image, a PDF or a video: shared with WADO-URI."""

    def __init__(self, config: Configuration, core: Core, files: ParsedFiles | None = None) -> None:
        self.config = config
        self.core = core
        self.instances = InstanceReader(core, files=files)

    def render(
        self, instance: Instance, options: RenderOptions, frames: list[int] | None
    ) -> Response:
        """The rendered answer; `frames` are 1-based, None means the instance's default."""
        document = document_media_type(instance)
        if document is not None:
            return Response(self._document(instance, document), document)
        if not header.has_pixels(instance.tags):
            raise bad_request("This instance is not an image: it has no pixel data to render")
        if options.media_type not in image_output.IMAGE_MEDIA_TYPES:
            raise not_acceptable(
                f"An image cannot be rendered as {options.media_type}; "
                f"available: {', '.join(image_output.IMAGE_MEDIA_TYPES)}"
            )
        frames = self._checked_frames(instance, options, frames)
        images = [self._frame_image(instance, frame, options) for frame in frames]
        icc = self._icc_profile(instance, options)
        if options.icc_profile == "srgb" and icc is not None:
            images = [image_output.to_srgb(image, icc) for image in images]
            icc = image_output.srgb_profile()
        body = image_output.encode(
            images, options.media_type, options.quality, icc, instance.frame_ms()
        )
        return Response(body, options.media_type)

    def icon(self, instance: Instance, options: RenderOptions) -> Response:
        """A thumbnail for a document or a video: a labelled icon."""
        label = "PDF" if instance.sop_class == ENCAPSULATED_PDF else "VIDEO"
        image = image_output.apply_geometry(image_output.icon(label), options)
        media_type = options.media_type
        if media_type not in image_output.IMAGE_MEDIA_TYPES:
            media_type = "image/jpeg"
        return Response(image_output.encode([image], media_type, options.quality), media_type)

    def _checked_frames(
        self, instance: Instance, options: RenderOptions, frames: list[int] | None
    ) -> list[int]:
        count = instance.format.frames
        if frames is None:
            return list(range(1, count + 1)) if options.media_type == "image/gif" else [1]
        for frame in frames:
            if not 1 <= frame <= count:
                raise bad_request(f"Frame {frame} is out of range: the instance has {count}")
        if len(frames) > 1 and options.media_type != "image/gif":
            raise bad_request("Several frames can only be rendered as image/gif")
        return frames

    def _frame_image(self, instance: Instance, frame: int, options: RenderOptions) -> Image.Image:
        fmt, pixels = self._stored_frame(instance, frame)
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[:, :, 0]
        if pixels.ndim == 2:
            presented = self._grayscale(instance, frame, options).apply(pixels)
        else:
            presented = rendering.to_8bit_color(pixels, fmt)
        image = image_output.apply_geometry(image_output.to_image(presented), options)
        return image_output.burn_annotations(image, annotation_lines(instance, frame, options))

    def _stored_frame(self, instance: Instance, frame: int) -> tuple[PixelFormat, np.ndarray]:
        """The frame's stored values, and the format they are in after decoding."""
        fmt = instance.format
        base = f"/instances/{instance.orthanc_id}/frames/{frame - 1}"
        if fmt.photometric != "PALETTE COLOR":  # the core applies the palette
            pixels = self._decoded_here(instance, frame)
            if pixels is not None:
                return fmt, pixels
        # The core's decoders give RGB for colour (palette and YBR included).
        decoded = replace(fmt, photometric="RGB" if fmt.samples == 3 else fmt.photometric)
        if fmt.photometric == "PALETTE COLOR":
            decoded = replace(fmt, photometric="RGB", samples=3, bits_stored=8)
        try:
            return decoded, np.load(io.BytesIO(self.core.get(base + "/numpy?rescale=0")))
        except CoreError as error:
            log.info("Core cannot decode %s (%s), trying pydicom", base, error.message)
        return decoded, self._decoded_by_pydicom(instance, base)

    def _decoded_here(self, instance: Instance, frame: int) -> np.ndarray | None:
        """The frame decoded in the plugin: native syntaxes, and RLE Lossless of a file read
        whole (pylibjpeg-rle takes a third of the core's time, .npy transfer included)."""
        fmt = instance.format
        if instance.transfer_syntax in NATIVE_SYNTAXES:
            return pixel_data.decode_native_frame(self._native_frame(instance, frame), fmt)
        if instance.transfer_syntax == transfer_syntax.RLE and instance.dataset is not None:
            stored = header.raw_bytes(instance.dataset, [header.PIXEL_DATA])
            try:
                return pixel_data.decode_rle_frame(stored, frame, fmt)
            except ValueError as error:
                log.info("RLE of %s: %s; asking the core", instance.orthanc_id, error)
        return None

    def _native_frame(self, instance: Instance, frame: int) -> bytes:
        """The frame's bytes: cut from the file already read, else from the core, else from the
        whole Pixel Data value when the core cannot cut frames (it refuses YBR_FULL_422)."""
        size = instance.format.frame_size
        whole_bytes = instance.format.bits_allocated % 8 == 0  # 1-bit frames need not be
        if instance.dataset is not None and whole_bytes:
            pixel_data = header.raw_bytes(instance.dataset, [header.PIXEL_DATA])
            return pixel_data[(frame - 1) * size : frame * size]
        try:
            return self.core.get(f"/instances/{instance.orthanc_id}/frames/{frame - 1}/raw")
        except CoreError:
            pixel_data = self._content(instance, header.PIXEL_DATA, 0)
            return pixel_data[(frame - 1) * size : frame * size]

    def _content(self, instance: Instance, *path: str | int) -> bytes:
        """The stored bytes of a value by its path of "gggg,eeee" keys and item indices."""
        if instance.dataset is not None:
            return header.raw_bytes(instance.dataset, path)
        uri = "/".join(str(step).replace(",", "-") for step in path)
        return self.core.get(f"/instances/{instance.orthanc_id}/content/{uri}")

    def _decoded_by_pydicom(self, instance: Instance, base: str) -> np.ndarray:
        """A frame the core cannot decode (JPEG 2000 without GDCM), by pydicom's decoders
        (Pillow's OpenJPEG, with the signedness PixelRepresentation gives); else 415."""
        encoded = self.core.get(base + "/raw")
        try:
            return decode_frame(encoded, instance.format, instance.transfer_syntax)
        except ValueError:
            raise HttpError(
                415,
                f"Cannot decode pixel data in transfer syntax {instance.transfer_syntax}",
            ) from None

    def _grayscale(
        self, instance: Instance, frame: int, options: RenderOptions
    ) -> rendering.GrayscaleRendering:
        return rendering.grayscale_rendering(
            instance.tags,
            frame,
            options.window,
            self._lut(instance, "0028,3000", "0028,3002", "0028,3006"),
            None if options.window else self._lut(instance, "0028,3010", "0028,3002", "0028,3006"),
            options.core_windowing,
        )

    def _lut(
        self, instance: Instance, sequence: str, descriptor: str, data: str
    ) -> rendering.Lut | None:
        """The first LUT of a Modality/VOI LUT Sequence (its data read only when present)."""
        items = instance.tags.get(sequence)
        if not isinstance(items, list) or not items or descriptor not in items[0]:
            return None
        values = str(items[0][descriptor]).split("\\")
        if len(values) < 3:
            return None
        raw = self._content(instance, sequence, 0, data)
        return rendering.Lut.from_descriptor([float(v) for v in values], raw)

    def _icc_profile(self, instance: Instance, options: RenderOptions) -> bytes | None:
        """The profile to embed: the image's own (`yes`, `srgb`), sRGB if it has none (`yes`)."""
        if options.icc_profile == "no" or options.media_type == "image/gif":
            return None
        if "0028,2000" in instance.tags:
            return self._content(instance, "0028,2000")
        return image_output.srgb_profile() if options.icc_profile == "yes" else None

    def _document(self, instance: Instance, media_type: str) -> bytes:
        if media_type == "application/pdf":
            return self._content(instance, "0042,0011").rstrip(b"\0")
        return self.core.get(f"/instances/{instance.orthanc_id}/frames/0/raw")


def annotation_lines(instance: Instance, frame: int, options: RenderOptions) -> list[str]:
    """The text asked by `annotation`: patient identity and/or acquisition technique."""
    tags, lines = instance.tags, []
    if "patient" in options.annotations:
        name = (tag_text(tags, "0010,0010") or "").replace("^", " ").strip()
        patient = tag_text(tags, "0010,0020"), tag_text(tags, "0010,0030")
        fields: tuple[str | None, ...] = (name, *patient)
        lines.append("  ".join(f for f in fields if f))
    if "technique" in options.annotations:
        window = options.window or rendering.image_window(tags, frame)
        fields = (
            tag_text(tags, "0008,0060"),
            tag_text(tags, "0008,103e"),
            f"C {window.center:g} W {window.width:g}" if window else None,
            f"frame {frame}/{instance.format.frames}",
        )
        lines.append("  ".join(f for f in fields if f))
    return [line for line in lines if line]


def parse_rendered_options(request: Request, thumbnail: bool = False) -> RenderOptions:
    """The media type from `accept` (query) or Accept, and the query parameters of PS3.18."""
    query = request.query
    accept = query.get("accept") or request.header("accept")
    options = RenderOptions(
        # Documents and videos are answered as they are, so their types are acceptable too.
        media_type=choose(
            parse_accept(accept), image_output.IMAGE_MEDIA_TYPES + image_output.DOCUMENT_MEDIA_TYPES
        ),
        fit=THUMBNAIL_SIZE if thumbnail else None,
        upscale=not thumbnail,
    )
    parsers: dict[str, Callable[[str], dict[str, Any]]] = {
        "quality": lambda v: {"quality": image_output.parse_quality(v)},
        "viewport": lambda v: {"viewport": image_output.parse_viewport(v)},
        "window": lambda v: {"window": image_output.parse_window(v)},
        "annotation": lambda v: {"annotations": image_output.parse_annotations(v)},
        "iccprofile": lambda v: {"icc_profile": image_output.parse_icc_profile(v)},
    }
    for name, parse in parsers.items():
        if name in query:
            options = replace(options, **parse(query[name]))
    return options


class RetrieveRendered:
    """`.../rendered` and `.../thumbnail` on studies, series, instances and frames."""

    def __init__(self, config: Configuration, core: Core, files: ParsedFiles | None = None) -> None:
        self.core = core
        self.renderer = Renderer(config, core, files)

    def rendered(self, request: Request) -> Response:
        return self._answer(request, thumbnail=False)

    def thumbnail(self, request: Request) -> Response:
        return self._answer(request, thumbnail=True)

    def _answer(self, request: Request, thumbnail: bool) -> Response:
        path = ResourcePath.from_groups(request.groups[:3])
        frames = parse_frame_list(request.groups[3]) if len(request.groups) > 3 else None
        options = parse_rendered_options(request, thumbnail)
        instance = self.renderer.instances.load(self.representative_instance(path))
        if not instance.belongs_to(path.study, path.series):
            raise not_found(f"No such resource in Orthanc: {path.describe()}")
        if thumbnail and document_media_type(instance) is not None:
            return self.renderer.icon(instance, options)
        return self.renderer.render(instance, options, frames)

    def representative_instance(self, path: ResourcePath) -> str:
        """The instance itself (its parents are checked on its tags), or the middle instance
        of the (first image) series, the first of the two middle ones for an even count (as the
        official plugin: of two instances, the first one)."""
        if path.instance:
            found = self.renderer.instances.lookup(path.instance)
            if found is None:
                raise not_found(f"No such resource in Orthanc: {path.describe()}")
            return found
        series = locate(self.core, path) if path.series else self._first_series(path.study)
        instances = get_json(self.core, f"/series/{series}/instances")
        if not instances:
            raise bad_request(f"Series {path.series or series} has no instance to render")
        instances.sort(key=lambda i: _number(i["MainDicomTags"], "InstanceNumber"))
        return instances[(len(instances) - 1) // 2]["ID"]

    def _first_series(self, study_uid: str) -> str:
        study = locate(self.core, ResourcePath(study_uid))
        series = get_json(self.core, f"/studies/{study}/series")
        images = [s for s in series if _modality(s) not in NON_IMAGE_MODALITIES] or series
        images.sort(key=lambda s: _number(s["MainDicomTags"], "SeriesNumber"))
        return images[0]["ID"]


def _modality(resource: Mapping[str, Mapping[str, str]]) -> str:
    return resource.get("MainDicomTags", {}).get("Modality", "").upper()


def _number(tags: Mapping[str, str], name: str) -> tuple[int, float]:
    """A sort key: resources without a (numeric) value come last."""
    try:
        return (0, float(tags.get(name, "")))
    except ValueError:
        return (1, 0.0)
