"""Errors become answers in one place: status, JSON body, Allow header."""

from __future__ import annotations

import json

from orthanc_dicomweb.errors import HttpError, bad_request
from orthanc_dicomweb.http.web import Request, Response, handle
from orthanc_dicomweb.orthanc.core import CoreError


def request(method: str = "GET") -> Request:
    return Request(method=method, path="/dicom-web/x")


def test_handler_answer_is_returned() -> None:
    answer = handle({"GET": lambda r: Response(b"ok", "text/plain")}, request())
    assert answer.body == b"ok"


def test_http_error_becomes_json_with_its_status() -> None:
    def fail(r: Request) -> Response:
        raise bad_request("Malformed UID", {"UID": "x"})

    answer = handle({"GET": fail}, request())
    assert answer.status == 400
    assert json.loads(answer.body) == {
        "HttpStatus": 400,
        "Message": "Malformed UID",
        "Details": {"UID": "x"},
    }


def test_unsupported_method_is_405_with_allow() -> None:
    answer = handle({"GET": lambda r: Response(), "POST": lambda r: Response()}, request("PUT"))
    assert answer.status == 405
    assert answer.headers["Allow"] == "GET,POST"


def test_core_error_keeps_the_core_code() -> None:
    def missing(r: Request) -> Response:
        raise CoreError(17, "Unknown resource", "/studies/x")

    answer = handle({"GET": missing}, request())
    assert answer.status == 404
    assert json.loads(answer.body)["Details"]["OrthancError"] == 17


def test_unexpected_exception_is_a_logged_500_without_trace(caplog) -> None:
    def crash(r: Request) -> Response:
        raise ZeroDivisionError("boom")

    answer = handle({"GET": crash}, request())
    assert answer.status == 500
    assert "Traceback" not in answer.body
    assert "Internal error" in caplog.text


def test_error_headers_are_kept() -> None:
    def fail(r: Request) -> Response:
        raise HttpError(416, "Unsatisfiable range", headers={"Content-Range": "bytes */10"})

    assert handle({"GET": fail}, request()).headers == {"Content-Range": "bytes */10"}
