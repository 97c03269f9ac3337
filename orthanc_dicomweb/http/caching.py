"""HTTP caching: `ETag`, `Cache-Control` and `If-None-Match` (304) on retrieve and search.

Instance-level answers (instance retrieve, frames, bulk data, instance metadata, rendered images
and thumbnails of an instance or frame) never change while the stored file is the same: their
strong ETag hashes the core's `FileUuid` of the instance (a file stored again under the same
SOP Instance UID, `OverwriteInstances`, gets a new one) with what selects the representation
(path, query, `Accept`). A 304 costs a lookup in the core's UID index and `/instances/{id}`,
never reading the file; for a 200, the handler takes the instance found for the tag
(`request_scope`: one lookup per request). The parent UIDs of the path need no check for the
tag: a tag that hashes this path can only have come from a 200 for it, with this very file
(the handlers check them; `/tools/find` by the three UIDs would cost ~0.5 ms more a request).
`If-None-Match: *` runs the handler (which checks the whole path) and answers 304 when it
succeeds.

Answers about one study or series (study and series metadata, rendered images and thumbnails,
QIDO-RS below a study) get a weak ETag from what they cover: the instances of the series with
the uuid of each one's file (`series_members.MemberMemo`, which lists them again only when the
change log shows a store), so it changes when an instance is added, removed or stored again
there, and only then (below a study not stored, as the database's revision below). A 304
costs one `/tools/find` and `/changes?last`; for a 200, the handler takes the series and their
members found for the tag (`request_scope`).

Searches over the whole database (QIDO-RS `/studies`, `/series`, `/instances`) get a weak ETag
from its revision, as the search's index cache reads it from the change log and the deletion
token (`index_cache.IndexCache.revision`, shared by every Orthanc on the database), once per
request for the tag and the search. A 304 costs two cheap reads instead of the search.

Every tag also hashes the configuration and the headers that change URLs in answers (`Host`,
forwarded ones).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import replace

from .. import __version__
from ..config import Configuration
from ..errors import bad_request, not_found
from ..orthanc.core import Core
from ..orthanc.index_cache import IndexCache
from ..orthanc.request_scope import found_resources, indexed_instance, request_scope
from ..orthanc.resources import ResourcePath
from ..orthanc.series_members import MemberMemo
from ..orthanc.stored_instances import InstanceReader
from .web import Answer, Handler, MultipartResponse, Request, Response

_ENTITY_TAG = re.compile(r'\s*((?:W/)?"[\x21\x23-\x7e\x80-\xff]*")\s*')


def parse_if_none_match(value: str | None) -> list[str] | None:
    """The entity tags of `If-None-Match` (["*"] for any), None without it; 400 if malformed."""
    if value is None:
        return None
    if value.strip() == "*":
        return ["*"]
    tags = []
    for item in value.split(","):
        match = _ENTITY_TAG.fullmatch(item)
        if not match:
            raise bad_request(f'Malformed If-None-Match (expected "tag", W/"tag" or *): {value!r}')
        tags.append(match.group(1))
    return tags


def weakly_matches(tags: Iterable[str], etag: str) -> bool:
    """RFC 9110 13.1.2: If-None-Match compares entity tags weakly."""
    opaque = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == opaque for tag in tags)


URL_HEADERS = ("accept", "host", "forwarded", "x-forwarded-host", "x-forwarded-proto")
"""Headers that select the representation: `Accept`, and those RetrieveURLs are built from."""


def representation_key(request: Request) -> str:
    """What selects the representation of a resource at a path: query and headers."""
    query = "&".join(f"{k}={v}" for k, v in sorted(request.query.items()))
    headers = "|".join(request.header(name) or "" for name in URL_HEADERS)
    return f"{request.path}?{query}|{headers}"


def entity_tag(weak: bool, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join((__version__, *parts)).encode()).hexdigest()[:32]
    return f'W/"{digest}"' if weak else f'"{digest}"'


class HttpCaching:
    """Wraps handlers so that their answers carry ETags and honour `If-None-Match`."""

    def __init__(self, config: Configuration, core: Core, index: IndexCache) -> None:
        self.core = core
        self.instances = InstanceReader(core)
        self.members = MemberMemo(core)
        self.index = index  # the searches' own: its revision is what their answers reflect
        self.config_key = repr(config)  # a changed configuration may change every answer
        max_age = config.cache_max_age
        # "private": answers hold patient data, never for shared caches.
        self.instance_cache_control = (
            f"private, max-age={max_age}, immutable" if max_age else "private, no-cache"
        )

    def instance(self, handler: Handler) -> Handler:
        """For routes below an instance: a strong ETag from the stored file."""
        return self._conditional(handler, self._instance_tag, self.instance_cache_control)

    def covered(self, handler: Handler) -> Handler:
        """For answers about a study or series: a weak ETag from its instances' files."""
        return self._conditional(handler, self._covered_tag, "private, no-cache")

    def collection(self, handler: Handler) -> Handler:
        """For searches over the database: a weak ETag from the database revision."""
        return self._conditional(handler, self._collection_tag, "private, no-cache")

    def _instance_tag(self, request: Request) -> str:
        path = ResourcePath.from_groups(request.groups[:3])
        instance = indexed_instance(self.instances, path.instance or "")
        if instance is None:
            raise not_found(f"No such resource in Orthanc: {path.describe()}")
        return entity_tag(False, instance["FileUuid"], representation_key(request))

    def _covered_tag(self, request: Request) -> str:
        path = ResourcePath.from_groups(request.groups[:2])
        series = found_resources(self.core, path, level="Series")
        if not series:  # e.g. a search below a study not (yet) there: what it finds may change
            return self._collection_tag(request)
        files = sorted(
            member
            for one in series
            for member in self.members.members(one["ID"], one.get("Instances", []))
        )
        return entity_tag(True, repr(files), self.config_key, representation_key(request))

    def _collection_tag(self, request: Request) -> str:
        revision = self.index.revision()
        return entity_tag(True, revision, self.config_key, representation_key(request))

    def _conditional(
        self, handler: Handler, tag_of: Callable[[Request], str], cache_control: str
    ) -> Handler:
        def answer(request: Request) -> Answer:
            with request_scope():  # what the tag found, the handler takes
                return conditional_answer(request)

        def conditional_answer(request: Request) -> Answer:
            tags = parse_if_none_match(request.header("if-none-match"))
            # Tagged before answering: a change meanwhile gives a newer body an older tag,
            # which costs a full answer next time, never a stale one.
            headers = {"ETag": tag_of(request), "Cache-Control": cache_control, "Vary": "Accept"}
            if tags is not None and tags != ["*"] and weakly_matches(tags, headers["ETag"]):
                return Response(b"", "text/plain", 304, headers)
            answer = with_headers(handler(request), headers)
            if tags == ["*"] and is_success(answer):  # "*": any current representation
                return Response(b"", "text/plain", 304, headers)
            return answer

        return answer


def is_success(answer: Answer) -> bool:
    return not isinstance(answer, Response) or answer.status == 200


def with_headers(answer: Answer, headers: dict[str, str]) -> Answer:
    """The answer with these headers added (a successful one only).

    A multipart answer of several parts (several frames, bulk data items) stays a stream,
    without them: Orthanc 1.10.1 refuses any header but Set-Cookie on a streamed answer
    (`StartMultipartAnswer` fails with "Bad sequence of calls", probed with plugin 4.0), and
    buffering it would hold every part in memory and have the core gzip it. One part (an
    instance, a frame) is buffered with them (`http.layer`): streaming it would gain nothing,
    since the core holds a plugin's first part until a second one comes and sends a lone part
    as one buffer, gzipped for clients that accept gzip; so it does for the official plugin's
    instances and frames (probed and measured, docs/benchmarks.rst).
    """
    if isinstance(answer, Response):
        return replace(answer, headers=answer.headers | headers) if answer.status == 200 else answer
    if isinstance(answer, MultipartResponse):
        parts = iter(answer.parts)
        head = list(itertools.islice(parts, 2))
        if len(head) > 1:
            return replace(answer, parts=itertools.chain(head, parts))
        return replace(answer, parts=head, headers=answer.headers | headers)
    return answer
