"""Where the plugin keeps the state that every Orthanc of a database must share.

On the embedded SQLite index (one Orthanc), the plugin's global properties hold it, as before.
When the index is PostgreSQL (one or several Orthancs on one database), the plugin's own
properties (servers, deletion token), its jobs and its claims live in tables of the plugin in
that database (`postgres_store`): global properties would be kept per node there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .postgres_store import PostgresStore


@runtime_checkable
class SharedStoreAccess(Protocol):
    """A core that knows the shared store of its database (None on SQLite)."""

    def shared_store(self) -> PostgresStore | None: ...


def open_store(configuration: Mapping[str, Any]) -> PostgresStore | None:
    """The shared store of a PostgreSQL index (connected at first use), None on SQLite.
    psycopg is only imported when the index is PostgreSQL."""
    section = configuration.get("PostgreSQL")
    if not isinstance(section, Mapping) or not section.get("EnableIndex", False):
        return None
    from .postgres_store import PostgresStore, connection_info

    conninfo = connection_info(configuration)
    return PostgresStore(conninfo) if conninfo else None


def store_of(core: object) -> PostgresStore | None:
    return core.shared_store() if isinstance(core, SharedStoreAccess) else None


def claim(core: object, name: Callable[[], str], seconds: float) -> bool:
    """True when this node should do the work `name()` names (always, without a shared store;
    `name` is only computed then): on a shared database, one node gets it for `seconds`."""
    store = store_of(core)
    return True if store is None else store.claim(name(), seconds)


class SharedLock:
    """A reentrant lock of this process that, on a shared database, also excludes the other
    nodes while held (outermost level only): for read-modify-write of shared state."""

    def __init__(self, core: object, name: str) -> None:
        self._local = threading.RLock()
        self._store = store_of(core)
        self._name = name
        self._depth = 0
        self._held: AbstractContextManager[None] | None = None

    def __enter__(self) -> SharedLock:
        self._local.acquire()
        if self._depth == 0 and self._store is not None:
            held = self._store.advisory_lock(self._name)
            try:
                held.__enter__()
            except BaseException:
                self._local.release()
                raise
            self._held = held
        self._depth += 1
        return self

    def __exit__(self, *exception: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._held is not None:
                held, self._held = self._held, None
                held.__exit__(None, None, None)
        finally:
            self._local.release()
