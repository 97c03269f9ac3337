"""The JSON bodies of the client's routes (`{root}servers/{name}/...`): read and checked.

Every value is checked before anything is sent or submitted, and a bad one is a 400 naming it.
A `Uri` is checked as the remote may read it, since it is sent with the server's credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import bad_request
from ..http.bounded import loads_json
from ..orthanc.resources import validate_uid

_LEVELS = {"Study": "studies", "Series": "series", "Instance": "instances"}


def json_object(body: bytes) -> dict[str, Any]:
    """The request's body, a JSON object (an empty body is `{}`)."""
    try:
        value = loads_json(body or b"{}", "The body")
    except ValueError as error:
        raise bad_request("The body must be a JSON object", str(error)) from None
    if not isinstance(value, dict):
        raise bad_request("The body must be a JSON object")
    return value


def string_map(body: Mapping[str, Any], name: str) -> dict[str, str]:
    """`HttpHeaders` or `Arguments`: an object of strings (numbers are taken as text)."""
    value = body.get(name, {})
    if not isinstance(value, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
    ):
        raise bad_request(f'"{name}" must be a JSON object of strings')
    return {str(k): str(v) for k, v in value.items()}


def relative_uri(value: Any) -> str:
    """A path below the server's URL (`/studies`, `studies/1.2/series`); 400 otherwise.

    The path is checked as the remote may read it: percent-decoded (as often as it decodes to
    something else), since `%2e%2e/` or `%2F..` would climb out of the server's base path there
    with its credentials. The value itself is sent unchanged.
    """
    if not isinstance(value, str) or not value.strip():
        raise bad_request('"Uri" must be a non-empty string')
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        raise bad_request(f'"Uri" must be a path below the server URL, not {value!r}')
    if any(ord(c) < 33 or c in '\\"<>' for c in value):
        raise bad_request(f'"Uri" contains forbidden characters: {value!r}')
    path = _fully_decoded(parts.path)
    if any(ord(c) < 33 or c in "\\" for c in path) or {".", ".."} & set(path.split("/")):
        raise bad_request(
            f'"Uri" must stay below the server URL (no "..", encoded or not): {value!r}'
        )
    return value.lstrip("/")


def _fully_decoded(path: str) -> str:
    """`path` percent-decoded until nothing changes (`%252e` is `%2e`, then `.`)."""
    for _ in range(8):  # a bound: each round shortens the text
        decoded = unquote(path)
        if decoded == path:
            return path
        path = decoded
    raise bad_request(f'"Uri" is percent-encoded too many times: {path!r}')


def priority(body: Mapping[str, Any]) -> int:
    value = body.get("Priority", 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request('"Priority" must be an integer')
    return value


def synchronous(body: Mapping[str, Any]) -> bool:
    value = body.get("Synchronous", True)
    if not isinstance(value, bool):
        raise bad_request('"Synchronous" must be true or false')
    return value


def resources(body: Mapping[str, Any]) -> list[Any]:
    """The non-empty `Resources` array of a push or a retrieve."""
    value = body.get("Resources")
    if not isinstance(value, list) or not value:
        raise bad_request('The body must contain a non-empty array "Resources"')
    return value


def retrieve_uri(resource: Any) -> str:
    """`studies/{Study}[/series/{Series}[/instances/{Instance}]]` from DICOM UIDs."""
    if not isinstance(resource, dict) or not isinstance(resource.get("Study"), str):
        raise bad_request('Each resource to retrieve is an object with at least "Study"')
    uri = "studies/" + validate_uid(resource["Study"], "StudyInstanceUID")
    if resource.get("Series") is not None:
        uri += "/series/" + validate_uid(str(resource["Series"]), "SeriesInstanceUID")
        if resource.get("Instance") is not None:
            uri += "/instances/" + validate_uid(str(resource["Instance"]), "SOPInstanceUID")
    elif resource.get("Instance") is not None:
        raise bad_request('An "Instance" to retrieve needs its "Series"')
    return uri


def delete_uri(body: Mapping[str, Any]) -> str:
    """What to delete: a `Uri`, or `Level` with the UIDs down to it (the official form)."""
    if "Uri" in body:
        return relative_uri(body["Uri"])
    level = body.get("Level")
    if level not in _LEVELS:
        raise bad_request('Give "Uri", or "Level" (Study, Series, Instance) and the UIDs')
    keys = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    depth = list(_LEVELS).index(level) + 1
    uids = [validate_uid(str(body.get(key, "")), key) for key in keys[:depth]]
    segments = list(_LEVELS.values())[:depth]
    return "/".join(f"{segment}/{uid}" for segment, uid in zip(segments, uids, strict=True))
