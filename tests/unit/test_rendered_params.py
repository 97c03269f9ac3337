"""Parameters of Retrieve Rendered and WADO-URI: every bad value is a 4xx with a message."""

from __future__ import annotations

import pytest

from orthanc_dicomweb.dicom import image_output, rendering
from orthanc_dicomweb.dicom.image_output import Region, Viewport
from orthanc_dicomweb.dicom.rendering import Window
from orthanc_dicomweb.http.web import Request
from orthanc_dicomweb.services import wado_uri
from orthanc_dicomweb.services.rendered import parse_rendered_options
from tests.unit.fakes import http_error


def _options(query: dict[str, str], accept: str | None = None, thumbnail: bool = False):
    headers = {"accept": accept} if accept else {}
    return parse_rendered_options(Request("GET", "/x", query=query, headers=headers), thumbnail)


def _status(function, *args) -> int:
    error = http_error(function, *args)
    assert error.message
    return error.status


def test_defaults_are_jpeg_quality_90_and_no_profile() -> None:
    options = _options({})
    assert (options.media_type, options.quality, options.icc_profile) == ("image/jpeg", 90, "no")
    assert options.viewport is None and options.window is None and options.fit is None


def test_media_type_from_accept_header_or_accept_query() -> None:
    assert _options({}, "image/png").media_type == "image/png"
    assert _options({}, "image/gif, image/jpeg;q=0.5").media_type == "image/gif"
    assert _options({"accept": "image/png"}, "image/jpeg").media_type == "image/png"
    assert _options({}, "application/pdf").media_type == "application/pdf"
    assert _status(_options, {}, "application/dicom") == 406


def test_thumbnail_fits_128_without_upscaling() -> None:
    options = _options({}, thumbnail=True)
    assert options.fit == (128, 128) and not options.upscale


def test_all_parameters_parsed() -> None:
    options = _options(
        {
            "quality": "55",
            "viewport": "100,50,10,20,-30,40",
            "window": "40,400,SIGMOID",
            "annotation": "patient,technique",
            "iccprofile": "sRGB",
        }
    )
    assert options.quality == 55
    assert options.viewport == Viewport(100, 50, 10, 20, -30, 40)
    assert options.window == Window(40, 400, "SIGMOID")
    assert options.annotations == ("patient", "technique")
    assert options.icc_profile == "srgb"


def test_viewport_with_empty_region_fields_uses_defaults() -> None:
    assert image_output.parse_viewport("64,64,,,,") == Viewport(64, 64, 0, 0, None, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("quality", "0"),
        ("quality", "101"),
        ("quality", "high"),
        ("viewport", "0,0"),
        ("viewport", "-5,10"),
        ("viewport", "a,b"),
        ("viewport", "10"),
        ("viewport", "10,10,0,0,0,5"),
        ("viewport", "10,10,-1,0,5,5"),
        ("window", "40"),
        ("window", "40,0"),
        ("window", "40,0.5,linear"),
        ("window", "40,-10,sigmoid"),
        ("window", "x,400"),
        ("window", "40,nan"),
        ("window", "40,400,gamma"),
        ("annotation", "everything"),
        ("annotation", ""),
        ("iccprofile", "adobergb"),
    ],
)
def test_bad_values_are_400(name: str, value: str) -> None:
    assert _status(_options, {name: value}) == 400


def test_linear_exact_accepts_widths_below_one() -> None:
    window = image_output.parse_window("0,0.5,linear-exact")
    assert window == Window(0, 0.5, rendering.QUERY_LINEAR_EXACT)


def test_wado_content_type() -> None:
    assert wado_uri.parse_content_type(None) == "image/jpeg"
    assert wado_uri.parse_content_type("image/png") == "image/png"
    assert wado_uri.parse_content_type("image/jpg") == "image/jpeg"
    assert wado_uri.parse_content_type("text/html, application/dicom") == "application/dicom"
    assert _status(wado_uri.parse_content_type, "text/plain") == 400


def test_wado_image_options() -> None:
    query = {
        "rows": "64",
        "region": "0,0.25,0.5,0.75",
        "windowCenter": "40",
        "windowWidth": "400",
        "imageQuality": "70",
        "annotation": "technique",
    }
    options = wado_uri.parse_image_options(query, "image/png")
    assert options.fit == (1 << 16, 64) and options.region == Region(0, 0.25, 0.5, 0.75)
    assert options.window == Window(40, 400) and options.quality == 70
    assert options.annotations == ("technique",)
    assert options.core_windowing and not _options({}).core_windowing


@pytest.mark.parametrize(
    "query",
    [
        {"rows": "0"},
        {"columns": "x"},
        {"region": "0,0,1"},
        {"region": "0.5,0,0.2,1"},
        {"region": "0,0,1,1.5"},
        {"windowCenter": "40"},
        {"windowCenter": "40", "windowWidth": "0"},
        {"imageQuality": "0"},
        {"annotation": "nothing"},
    ],
)
def test_wado_bad_image_options_are_400(query: dict[str, str]) -> None:
    assert _status(wado_uri.parse_image_options, query, "image/jpeg") == 400
