"""What one request learned from the core, kept for the rest of that request.

The HTTP caching computes an answer's ETag before the handler runs, from the same resources
the handler then needs (the instance a SOP Instance UID names, a series with its members, the
database's revision). Inside `request_scope()`, `once(key, compute)` computes each thing once;
outside one (background threads, tests), it computes every time. Each scope is its own:
Orthanc serves requests on several threads, and a context variable is per thread. What a
lazily consumed answer (a multipart stream) computes after its handler returned is no longer
in the scope, and is computed again, never taken from another request.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from .core import Core, get_if_exists, loads
from .resources import ResourcePath, find_resources, only_one
from .stored_instances import InstanceReader

T = TypeVar("T")

_memo: ContextVar[dict[Hashable, Any] | None] = ContextVar("dicomweb_request_memo", default=None)


@contextmanager
def request_scope() -> Iterator[None]:
    """Remember what `once` computes until the block ends (nested scopes share the outer one)."""
    if _memo.get() is not None:
        yield
        return
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def once(key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, done once per request scope for this key (a failure is not remembered)."""
    memo = _memo.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    result: T = memo[key]
    return result


def found_resources(core: Core, path: ResourcePath, level: str | None = None) -> list[Any]:
    """`resources.find_resources`, once per request."""
    level = level or path.level
    return once(("found", path, level), lambda: find_resources(core, path, level))


def located_resource(core: Core, path: ResourcePath) -> dict[str, Any]:
    """`resources.locate_resource` (404 if unknown, 409 if several), once per request."""
    found = found_resources(core, path)
    only_one([resource["ID"] for resource in found], path)
    resource: dict[str, Any] = found[0]
    return resource


def indexed_id(reader: InstanceReader, sop_uid: str) -> str | None:
    """The Orthanc id the core's UID index names for a SOP Instance UID (the index names one
    instance per UID: its parents are not checked), None if unknown; once per request."""
    return once(("indexed id", sop_uid), lambda: reader.lookup(sop_uid))


def indexed_instance(reader: InstanceReader, sop_uid: str) -> dict[str, Any] | None:
    """The core's description (`/instances/{id}`) of the instance of `indexed_id`, None if
    unknown; once per request."""

    def described() -> dict[str, Any] | None:
        orthanc_id = indexed_id(reader, sop_uid)
        found = (
            None if orthanc_id is None else get_if_exists(reader.core, f"/instances/{orthanc_id}")
        )
        return None if found is None else dict(loads(found))

    return once(("indexed instance", sop_uid), described)
