"""What every route's answer goes through: the `accept` query parameter, CORS, and the
buffering of multipart answers that must carry headers.

- `?accept=...` (PS3.18 8.3.3.1) replaces the `Accept` header on GET requests below the
  DICOMweb root, for browsers that cannot set headers (links, `<img>`) or must not (a header
  with a `"` makes a cross-origin request need a preflight); a value that does not parse: 400.
- CORS headers (`cors.py`) go on every answer, errors included; preflights are answered.
- Orthanc 1.10.1 refuses every header but `Set-Cookie` on a streamed multipart answer (its
  `StartMultipartAnswer` fails with "Bad sequence of calls"): a multipart answer with headers
  (ETag, CORS) is therefore encoded in memory and sent as one buffer. Instance-level answers
  are one instance; a cross-origin study retrieve is the whole study (README: limits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..config import Configuration
from ..errors import HttpError, bad_request
from .cors import CorsPolicy, is_preflight
from .multipart import encode_multipart, multipart_content_type, new_boundary
from .negotiation import _split_outside_quotes, parse_media_type
from .web import Answer, Handler, MultipartResponse, Request, Response, error_response, handle

ACCEPT_PARAMETER = "accept"


def accept_from_query(request: Request) -> Request:
    """The request with `?accept=` moved into its `Accept` header; 400 if it does not parse."""
    value = request.query.get(ACCEPT_PARAMETER)
    if value is None or request.method != "GET":
        return request
    items = [item for item in _split_outside_quotes(value, ",") if item.strip()]
    if not items:
        raise bad_request("Empty accept query parameter")
    for item in items:
        parse_media_type(item)  # 400 naming the item that is no media type
    query = {k: v for k, v in request.query.items() if k != ACCEPT_PARAMETER}
    return replace(request, query=query, headers={**request.headers, "accept": value})


def buffered(answer: MultipartResponse) -> Response:
    """A multipart answer as one buffer (see module doc), its headers kept."""
    boundary = new_boundary()
    # Each part with its Content-Length, as the core's streamed parts have it.
    parts = (
        (part, answer.part_content_type, {"Content-Length": str(len(part))})
        for part in answer.parts
    )
    content_type = multipart_content_type(answer.part_content_type, boundary)
    if answer.subtype != "related":
        content_type = content_type.replace("multipart/related", f"multipart/{answer.subtype}", 1)
    return Response(encode_multipart(parts, boundary), content_type, 200, answer.headers)


def merge_headers(answer_headers: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """Headers with `extra` added; `Vary` values are joined, not replaced."""
    merged = dict(answer_headers)
    for name, value in extra.items():
        if name == "Vary" and merged.get("Vary"):
            merged["Vary"] = f"{merged['Vary']}, {value}"
        else:
            merged[name] = value
    return merged


class HttpLayer:
    """`respond(handlers, request)`: `web.handle` with the behaviours of the module doc."""

    def __init__(self, config: Configuration) -> None:
        self.root = config.root
        self.cors = CorsPolicy(config.cors)

    def respond(self, handlers: Mapping[str, Handler], request: Request) -> Answer:
        try:
            if (request.path + "/").startswith(self.root):  # the root itself comes without "/"
                request = accept_from_query(request)
        except HttpError as error:
            return self._decorated(request, error_response(error))
        if is_preflight(request):
            preflight = {request.method: lambda r: self.cors.preflight(r, handlers)}
            return self._decorated(request, handle(preflight, request))
        return self._decorated(request, handle(handlers, request))

    def _decorated(self, request: Request, answer: Answer) -> Answer:
        cors = self.cors.headers(request)
        if cors and isinstance(answer, Response | MultipartResponse):
            answer = replace(answer, headers=merge_headers(answer.headers, cors))
        if isinstance(answer, MultipartResponse) and answer.headers:
            return buffered(answer)
        return answer
