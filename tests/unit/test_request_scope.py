"""What a request found for its ETag, the handler takes: one core lookup per request."""

from __future__ import annotations

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.http.caching import HttpCaching
from orthanc_dicomweb.http.web import Request, Response
from orthanc_dicomweb.orthanc.index_cache import IndexCache
from orthanc_dicomweb.orthanc.request_scope import (
    indexed_id,
    indexed_instance,
    located_resource,
    once,
    request_scope,
)
from orthanc_dicomweb.orthanc.resources import ResourcePath
from orthanc_dicomweb.orthanc.series_members import MemberMemo
from orthanc_dicomweb.orthanc.stored_instances import InstanceReader
from tests.unit.fakes import FakeCore

INSTANCE = {"ID": "i1", "FileUuid": "f1", "FileSize": 10, "ParentSeries": "s1"}
SERIES = {"ID": "s1", "Instances": ["i1"], "ParentStudy": "st1"}


def test_once_remembers_within_a_scope_only() -> None:
    computed: list[int] = []

    def compute() -> int:
        computed.append(1)
        return len(computed)

    assert once("k", compute) == 1 and once("k", compute) == 2  # no scope: every time
    with request_scope():
        assert once("k", compute) == 3
        with request_scope():  # nested: the same request
            assert once("k", compute) == 3
        assert once("other", compute) == 4
    assert once("k", compute) == 5


def test_instance_tag_and_handler_share_one_lookup() -> None:
    core = FakeCore(
        {
            ("POST", "/tools/lookup"): [{"Type": "Instance", "ID": "i1"}],
            ("GET", "/instances/i1"): INSTANCE,
        }
    )
    caching = HttpCaching(Configuration(), core, IndexCache(core, capacity=0))
    reader = InstanceReader(core)

    def handler(request: Request) -> Response:
        found = indexed_instance(reader, "1.2.3.4")
        assert found is not None and indexed_id(reader, "1.2.3.4") == "i1"
        return Response(found["FileUuid"].encode(), "text/plain")

    request = Request("GET", "/x", groups=("1.2", "1.2.3", "1.2.3.4"))
    answer = caching.instance(handler)(request)
    assert isinstance(answer, Response) and answer.body == b"f1" and "ETag" in answer.headers
    assert [uri for _, uri, _ in core.calls] == ["/tools/lookup", "/instances/i1"]
    caching.instance(handler)(request)
    assert len(core.calls) == 4  # the next request looks it up again


def test_series_tag_and_handler_list_the_members_once() -> None:
    core = FakeCore(
        {
            ("POST", "/tools/find"): [SERIES],
            ("GET", "/changes?last"): {"Last": 3},
            ("GET", "/series/s1/instances"): [INSTANCE],
        }
    )
    caching = HttpCaching(Configuration(), core, IndexCache(core, capacity=0))
    other_memo = MemberMemo(core)  # as the metadata cache has its own

    def handler(request: Request) -> Response:
        found = located_resource(core, ResourcePath("1.2", "1.2.3"))
        members = other_memo.members(found["ID"], found["Instances"])
        return Response(repr(members).encode(), "text/plain")

    caching.covered(handler)(Request("GET", "/x", groups=("1.2", "1.2.3")))
    uris = [uri for _, uri, _ in core.calls]
    assert uris == ["/tools/find", "/changes?last", "/series/s1/instances"]
