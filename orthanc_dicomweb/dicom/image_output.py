"""Rendered images: the options a client asks for (Retrieve Rendered, PS3.18 8.3.5.1.3, and
WADO-URI), and the output image made from presentation values: viewport and region, size,
annotations, ICC profile, JPEG / PNG / GIF encoding.

Pure Pillow / NumPy: no Orthanc here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageDraw, ImageFont, ImageOps

from ..errors import bad_request
from .rendering import QUERY_LINEAR_EXACT, WINDOW_FUNCTIONS, Window

ANNOTATIONS = ("patient", "technique")
ICC_PROFILES = ("no", "yes", "srgb")
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif")
DOCUMENT_MEDIA_TYPES = ("application/pdf", "video/mpeg", "video/mp4")
DEFAULT_QUALITY = 90
DEFAULT_GIF_FRAME_MS = 100


# --- Parameters common to rendered resources and WADO-URI --------------------------------


@dataclass(frozen=True)
class Viewport:
    """Output size (vw, vh) and optional source region (sx, sy, sw, sh; negative flips)."""

    width: int
    height: int
    sx: int = 0
    sy: int = 0
    sw: int | None = None
    sh: int | None = None


@dataclass(frozen=True)
class Region:
    """A source region in fractions of the image (WADO-URI `region=x1,y1,x2,y2`)."""

    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class RenderOptions:
    """Everything a client may ask of a rendered image."""

    media_type: str = "image/jpeg"
    quality: int = DEFAULT_QUALITY
    viewport: Viewport | None = None
    region: Region | None = None
    window: Window | None = None
    annotations: tuple[str, ...] = ()
    icc_profile: str = "no"
    fit: tuple[int, int] | None = None
    """A box the output must fit in when no viewport is given (thumbnails, WADO rows/columns)."""
    upscale: bool = True
    core_windowing: bool = False
    """Grayscale windows applied in the core's arithmetic (WADO-URI, see `window_like_core`)."""


def parse_quality(text: str) -> int:
    value = _parse_int(text, "quality")
    if not 1 <= value <= 100:
        raise bad_request(f"quality must be between 1 and 100, not {value}")
    return value


def parse_viewport(text: str) -> Viewport:
    """`vw,vh` or `vw,vh,sx,sy,sw,sh` (PS3.18 8.3.5.1.3); empty sx..sh keep defaults."""
    fields = [f.strip() for f in text.split(",")]
    if len(fields) not in (2, 6):
        raise bad_request(f"viewport must be vw,vh or vw,vh,sx,sy,sw,sh, not {text!r}")
    width, height = (_parse_int(f, "viewport width/height") for f in fields[:2])
    if width <= 0 or height <= 0:
        raise bad_request(f"viewport width and height must be positive, not {text!r}")
    if len(fields) == 2:
        return Viewport(width, height)
    sx, sy = (_parse_int(f, "viewport sx/sy") if f else 0 for f in fields[2:4])
    sw, sh = (_parse_int(f, "viewport sw/sh") if f else None for f in fields[4:6])
    if sx < 0 or sy < 0 or sw == 0 or sh == 0:
        raise bad_request(f"viewport region must have sx, sy >= 0 and non-zero sw, sh: {text!r}")
    return Viewport(width, height, sx, sy, sw, sh)


def parse_window(text: str) -> Window:
    """`center,width[,function]` with function linear, linear-exact or sigmoid."""
    fields = [f.strip() for f in text.split(",")]
    if len(fields) not in (2, 3):
        raise bad_request(f"window must be center,width[,function], not {text!r}")
    center, width = _parse_float(fields[0], "window center"), _parse_float(fields[1], "width")
    function = (fields[2] if len(fields) == 3 else "linear").upper().replace("-", "_")
    if function not in WINDOW_FUNCTIONS:
        raise bad_request(f"window function must be linear, linear-exact or sigmoid: {text!r}")
    window = checked_window(center, width, function)
    return replace(window, function=QUERY_LINEAR_EXACT) if function == "LINEAR_EXACT" else window


def checked_window(center: float, width: float, function: str = "LINEAR") -> Window:
    """A window, refused when its width is meaningless (PS3.3: >= 1 for LINEAR, else > 0)."""
    if (function == "LINEAR" and width < 1.0) or width <= 0.0:
        limit = ">= 1" if function == "LINEAR" else "> 0"
        raise bad_request(f"window width must be {limit} for {function.lower()}, not {width:g}")
    return Window(center, width, function)


def parse_annotations(text: str) -> tuple[str, ...]:
    values = tuple(v.strip().lower() for v in text.split(",") if v.strip())
    unknown = [v for v in values if v not in ANNOTATIONS]
    if unknown or not values:
        raise bad_request(f"annotation must list patient and/or technique, not {text!r}")
    return values


def parse_icc_profile(text: str) -> str:
    value = text.strip().lower()
    if value not in ICC_PROFILES:
        raise bad_request(f"iccprofile must be one of {', '.join(ICC_PROFILES)}, not {text!r}")
    return value


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise bad_request(f"{what} must be an integer, not {text!r}") from None


def _parse_float(text: str, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise bad_request(f"{what} must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise bad_request(f"{what} must be a finite number, not {text!r}")
    return value


# --- From presentation values to the output image -----------------------------------------


def to_image(presented: np.ndarray) -> Image.Image:
    return Image.fromarray(presented, "L" if presented.ndim == 2 else "RGB")


def apply_geometry(image: Image.Image, options: RenderOptions) -> Image.Image:
    """Crop to the viewport's region (flipping on negative sw/sh) or the WADO-URI region, then
    scale to fit the viewport or the fit box, keeping the aspect ratio."""
    if options.viewport is not None:
        image = _crop_viewport(image, options.viewport)
        return _scale_to_fit(image, options.viewport.width, options.viewport.height, True)
    if options.region is not None:
        image = _crop_region(image, options.region)
    if options.fit is not None:
        return _scale_to_fit(image, *options.fit, options.upscale)
    return image


def _crop_viewport(image: Image.Image, viewport: Viewport) -> Image.Image:
    left, width = _span(viewport.sx, viewport.sw, image.width)
    top, height = _span(viewport.sy, viewport.sh, image.height)
    if width <= 0 or height <= 0:
        raise bad_request(f"viewport region lies outside the {image.width}x{image.height} image")
    if (left, top, width, height) != (0, 0, image.width, image.height):
        image = image.crop((left, top, left + width, top + height))
    if viewport.sw is not None and viewport.sw < 0:
        image = ImageOps.mirror(image)
    if viewport.sh is not None and viewport.sh < 0:
        image = ImageOps.flip(image)
    return image


def _span(start: int, size: int | None, limit: int) -> tuple[int, int]:
    """The source interval [start, start+size) (or [start+size, start) when size < 0),
    clipped to the image."""
    if size is None:
        low, high = start, limit
    elif size < 0:
        low, high = start + size, start
    else:
        low, high = start, start + size
    low, high = max(low, 0), min(high, limit)
    return low, high - low


def _crop_region(image: Image.Image, region: Region) -> Image.Image:
    box = (
        math.floor(region.left * image.width),
        math.floor(region.top * image.height),
        math.ceil(region.right * image.width),
        math.ceil(region.bottom * image.height),
    )
    return image.crop(box)


def _scale_to_fit(image: Image.Image, width: int, height: int, upscale: bool) -> Image.Image:
    scale = min(width / image.width, height / image.height)
    if scale == 1.0 or (scale > 1.0 and not upscale):
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0 if scale < 0.5 else None)


def burn_annotations(image: Image.Image, lines: Sequence[str]) -> Image.Image:
    """Write text lines in the top-left corner, white on a dark outline so they read anywhere."""
    if not lines:
        return image
    image = image.copy()
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    white, black = (
        (255 if image.mode == "L" else (255, 255, 255)),
        (0 if image.mode == "L" else (0, 0, 0)),
    )
    draw.multiline_text((4, 4), "\n".join(lines), fill=white, font=font,
                        stroke_width=1, stroke_fill=black)  # fmt: skip
    return image


def to_srgb(image: Image.Image, icc_profile: bytes) -> Image.Image:
    """Colours converted from the image's own ICC profile to sRGB."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"))
    return converted if converted is not None else image


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def encode(
    images: Sequence[Image.Image],
    media_type: str,
    quality: int = DEFAULT_QUALITY,
    icc_profile: bytes | None = None,
    frame_ms: float = DEFAULT_GIF_FRAME_MS,
) -> bytes:
    """JPEG or PNG of the first image, or a GIF (animated when there are several images)."""
    buffer = io.BytesIO()
    extra: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
    if media_type == "image/jpeg":
        images[0].save(buffer, "JPEG", quality=quality, **extra)
    elif media_type == "image/png":
        images[0].save(buffer, "PNG", compress_level=1, **extra)
    elif media_type == "image/gif":
        first, *rest = images
        animation = {"save_all": True, "append_images": rest, "loop": 0} if rest else {}
        first.save(buffer, "GIF", duration=max(int(frame_ms), 20), **animation)
    else:
        raise bad_request(f"Cannot encode a rendered image as {media_type}")
    return buffer.getvalue()


def icon(label: str, size: int = 128) -> Image.Image:
    """A plain thumbnail for objects without pixels to show (video, PDF)."""
    image = Image.new("RGB", (size, size), (48, 48, 56))
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, size - 9, size - 9), outline=(200, 200, 210), width=3)
    font = ImageFont.load_default(size=size // 5)
    draw.text((size / 2, size / 2), label, fill=(240, 240, 240), font=font, anchor="mm")
    return image
