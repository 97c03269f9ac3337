"""The plugin's shared state in the PostgreSQL database of the Orthanc index.

Several Orthancs on one PostgreSQL index must see one set of servers, one list of jobs and
one deletion token. Orthanc's global properties cannot hold them: the PostgreSQL index keeps
plugin properties per `DatabaseServerIdentifier`, which differs on each node (and a shared
identifier would also share Orthanc's own saved jobs). So the plugin keeps its state in tables
of its own (`dicomweb_*`) in that database, created on first use and versioned, and changes
them in transactions: read-modify-write updates and job claims cannot interleave.

The connection comes from the `PostgreSQL` section, as the index plugin reads it
(`ConnectionUri`, or `Host`, `Port`, `Database`, `Username`, `Password`, `EnableSsl`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SCHEMA_LOCK = 0x44574542  # "DWEB": the advisory lock under which nodes create the tables
SCHEMA = (
    "CREATE TABLE dicomweb_schema (version integer NOT NULL)",
    "CREATE TABLE dicomweb_properties (key integer PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE dicomweb_claims (name text PRIMARY KEY, until timestamptz NOT NULL)",
    """CREATE TABLE dicomweb_jobs (
        id text PRIMARY KEY,
        sequence bigserial NOT NULL,
        type text NOT NULL,
        priority integer NOT NULL,
        state text NOT NULL,
        owner text,
        lease_until timestamptz,
        requested text,
        completion text,
        saved text NOT NULL)""",
    "CREATE INDEX dicomweb_jobs_queue ON dicomweb_jobs (state, priority DESC, sequence)",
)
POOL_SIZE = 8
"""Connections per node at most: callers beyond wait (the index plugin uses its own)."""
ATTEMPTS = 6
# Errors after which the whole transaction may simply run again.
_RETRIED = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
T = TypeVar("T")


class SharedStoreError(Exception):
    """The shared state cannot be used (unreachable database, newer schema...)."""


def connection_info(configuration: Mapping[str, Any]) -> str | None:
    """The libpq connection string of the Orthanc index, None unless it is PostgreSQL."""
    section = configuration.get("PostgreSQL")
    if not isinstance(section, Mapping) or not section.get("EnableIndex", False):
        return None
    if section.get("ConnectionUri"):
        return str(section["ConnectionUri"])
    parts = {
        "host": section.get("Host", "localhost"),
        "port": section.get("Port", 5432),
        "dbname": section.get("Database", "orthanc"),
        "user": section.get("Username", "orthanc"),
        "password": section.get("Password", ""),
        "sslmode": "require" if section.get("EnableSsl", False) else "prefer",
    }
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items()})


class PostgresStore:
    """Transactions on the shared tables, over a small pool of connections."""

    def __init__(self, conninfo: str, pool_size: int = POOL_SIZE) -> None:
        self.conninfo = conninfo
        self._idle: list[psycopg.Connection[Any]] = []
        self._slots = threading.BoundedSemaphore(pool_size)
        self._lock = threading.Lock()
        self._schema_ready = False

    # --- connections and transactions -------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._slots:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None or connection.closed:
                connection = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)
            try:
                yield connection
            finally:
                if not connection.closed and connection.info.transaction_status.name == "IDLE":
                    with self._lock:
                        self._idle.append(connection)
                else:
                    connection.close()

    def transaction(self, work: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """Run `work(cursor)` in one transaction, again from the start when PostgreSQL
        aborted it for a conflict with another node or when the connection was lost."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._connection() as connection:
                    self._ensure_schema(connection)
                    with connection.transaction(), connection.cursor() as cursor:
                        return work(cursor)
            except (*_RETRIED, psycopg.OperationalError) as error:
                if attempt == ATTEMPTS:
                    raise SharedStoreError(f"shared state: {error}") from error
                time.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    def _ensure_schema(self, connection: psycopg.Connection[Any]) -> None:
        if self._schema_ready:
            return
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            cursor.execute("SELECT to_regclass('dicomweb_schema') IS NOT NULL")
            if not _first(cursor):
                for statement in SCHEMA:
                    cursor.execute(statement)
                cursor.execute("INSERT INTO dicomweb_schema VALUES (%s)", (SCHEMA_VERSION,))
                log.info("shared state tables created (schema version %d)", SCHEMA_VERSION)
            cursor.execute("SELECT max(version) FROM dicomweb_schema")
            version = _first(cursor)
        if version != SCHEMA_VERSION:
            raise SharedStoreError(
                f"shared state tables have schema version {version}, this plugin knows "
                f"{SCHEMA_VERSION}: upgrade every node to one version"
            )
        self._schema_ready = True

    @contextmanager
    def advisory_lock(self, name: str) -> Iterator[None]:
        """Hold a lock named `name` that excludes every node (PostgreSQL drops it with the
        connection, should this process die holding it)."""
        with self._connection() as connection:
            connection.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))

    # --- properties: the plugin's global properties, shared by every node --------------

    def get_property(self, key: int) -> str:
        def read(cursor: psycopg.Cursor[Any]) -> str:
            cursor.execute("SELECT value FROM dicomweb_properties WHERE key = %s", (key,))
            row = cursor.fetchone()
            return row[0] if row else ""

        return self.transaction(read)

    def set_property(self, key: int, value: str) -> None:
        self.transaction(lambda cursor: _upsert(cursor, key, value))

    def update_property(self, key: int, change: Callable[[str], str]) -> str:
        """Replace a property with `change(current value)`, atomically across nodes."""

        def update(cursor: psycopg.Cursor[Any]) -> str:
            # The row must exist to be locked: create it empty first (no-op when it exists).
            cursor.execute(
                "INSERT INTO dicomweb_properties VALUES (%s, '') ON CONFLICT DO NOTHING", (key,)
            )
            cursor.execute(
                "SELECT value FROM dicomweb_properties WHERE key = %s FOR UPDATE", (key,)
            )
            value = change(_first(cursor))
            _upsert(cursor, key, value)
            return value

        return self.transaction(update)

    # --- claims: one node does a piece of work, the others skip it ---------------------

    def claim(self, name: str, seconds: float) -> bool:
        """True for the one caller, on any node, that gets `name` for `seconds`."""

        def take(cursor: psycopg.Cursor[Any]) -> bool:
            cursor.execute("DELETE FROM dicomweb_claims WHERE until < now() - interval '1 day'")
            cursor.execute(
                """INSERT INTO dicomweb_claims VALUES (%(name)s,
                       clock_timestamp() + make_interval(secs => %(seconds)s))
                   ON CONFLICT (name) DO UPDATE SET until = EXCLUDED.until
                   WHERE dicomweb_claims.until < clock_timestamp()
                   RETURNING name""",
                {"name": name, "seconds": seconds},
            )
            return cursor.fetchone() is not None

        return self.transaction(take)

    def release(self, name: str) -> None:
        self.transaction(
            lambda c: c.execute("DELETE FROM dicomweb_claims WHERE name = %s", (name,))
        )


def _first(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    return row[0] if row else None


def _upsert(cursor: psycopg.Cursor[Any], key: int, value: str) -> None:
    cursor.execute(
        """INSERT INTO dicomweb_properties VALUES (%s, %s)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
        (key, value),
    )
