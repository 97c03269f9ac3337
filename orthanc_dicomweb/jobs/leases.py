"""The jobs of every node in one PostgreSQL table, each run by the node that holds its lease.

A node claims the next job in one statement (`FOR UPDATE SKIP LOCKED`: two nodes never get the
same row) and holds it while its lease lasts; it renews the lease while the job runs, and every
write it makes is conditioned on still owning the job. A job whose node died keeps state
`Running` with a lease in the past: the next claim, by any node, takes it over, and the job goes
on from the `Content` saved last. Pause and cancel asked through another node are written in
`requested`; the owner reads them when it renews or saves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from psycopg import Cursor

from ..errors import not_found
from ..orthanc.postgres_store import PostgresStore
from .model import Job, JobState

FINISHED_STATES = [JobState.SUCCESS.value, JobState.FAILURE.value]
_COLUMNS = "saved, state, sequence, requested"


def _job_of(row: tuple[Any, ...]) -> Job:
    """A job from its row: the saved description, with the state the row holds."""
    saved, state, sequence, requested = row
    job = Job.from_saved(orjson.loads(saved))
    job.state = JobState(state)
    job.sequence = sequence
    job.requested = JobState(requested) if requested else None
    return job


def _saved(job: Job) -> str:
    return orjson.dumps(job.to_saved()).decode()


class LeasedJobs:
    """The `dicomweb_jobs` table, as seen by one node (`owner`)."""

    def __init__(self, store: PostgresStore, owner: str) -> None:
        self.store = store
        self.owner = owner

    def insert(self, job: Job) -> None:
        """Add a new job; its `sequence` (order of submission, cluster-wide) is set."""

        def insert(cursor: Cursor[Any]) -> int:
            cursor.execute(
                """INSERT INTO dicomweb_jobs (id, type, priority, state, saved)
                   VALUES (%s, %s, %s, %s, %s) RETURNING sequence""",
                (job.id, job.type, job.priority, job.state.value, _saved(job)),
            )
            return _one(cursor)[0]

        job.sequence = self.store.transaction(insert)

    def claim(self, types: list[str], lease: float) -> Job | None:
        """Take the next job to run, by priority then submission: pending, or running on a node
        whose lease expired. None when there is none."""

        def claim(cursor: Cursor[Any]) -> Job | None:
            cursor.execute(
                f"""UPDATE dicomweb_jobs SET state = 'Running', owner = %(owner)s,
                       lease_until = clock_timestamp() + make_interval(secs => %(lease)s)
                   WHERE id = (
                       SELECT id FROM dicomweb_jobs
                       WHERE type = ANY(%(types)s)
                         AND (state IN ('Pending', 'Retry')
                              OR (state = 'Running' AND lease_until < clock_timestamp()))
                       ORDER BY priority DESC, sequence
                       LIMIT 1 FOR UPDATE SKIP LOCKED)
                   RETURNING {_COLUMNS}""",
                {"owner": self.owner, "lease": lease, "types": types},
            )
            row = cursor.fetchone()
            return _job_of(row) if row else None

        return self.store.transaction(claim)

    def renew(self, job: Job, lease: float) -> tuple[bool, str | None]:
        """Extend the lease: (still ours, the pause or cancel asked meanwhile)."""
        return self._owned_update(
            """UPDATE dicomweb_jobs
               SET lease_until = clock_timestamp() + make_interval(secs => %(lease)s)
               WHERE id = %(id)s AND owner = %(owner)s AND state = 'Running'
               RETURNING requested""",
            {"id": job.id, "owner": self.owner, "lease": lease},
        )

    def save_progress(self, job: Job) -> tuple[bool, str | None]:
        """Write a running job's progress and content: (still ours, pause or cancel asked)."""
        return self._owned_update(
            """UPDATE dicomweb_jobs SET saved = %(saved)s
               WHERE id = %(id)s AND owner = %(owner)s AND state = 'Running'
               RETURNING requested""",
            {"id": job.id, "owner": self.owner, "saved": _saved(job)},
        )

    def release(self, job: Job) -> bool:
        """Write the job's new state (finished or paused) and give it up; False if another
        node had taken it over meanwhile (its write is then the one that counts)."""
        owned, _ = self._owned_update(
            """UPDATE dicomweb_jobs SET state = %(state)s, saved = %(saved)s, owner = NULL,
                   lease_until = NULL, requested = NULL, completion = %(completion)s
               WHERE id = %(id)s AND owner = %(owner)s
               RETURNING requested""",
            {
                "id": job.id,
                "owner": self.owner,
                "state": job.state.value,
                "saved": _saved(job),
                "completion": job.completion_time,
            },
        )
        return owned

    def _owned_update(self, statement: str, values: dict[str, Any]) -> tuple[bool, str | None]:
        def update(cursor: Cursor[Any]) -> tuple[bool, str | None]:
            cursor.execute(statement, values)
            row = cursor.fetchone()
            return (row is not None, row[0] if row else None)

        return self.store.transaction(update)

    def control(self, job_id: str, change: Callable[[Job], None]) -> Job:
        """Apply `change` (pause, resume, cancel, resubmit) to a job, wherever it runs, with
        its row locked; an HttpError from `change` leaves the job as it was."""

        def control(cursor: Cursor[Any]) -> Job:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM dicomweb_jobs WHERE id = %s FOR UPDATE", (job_id,)
            )
            row = cursor.fetchone()
            if row is None:
                raise not_found(f"Unknown job: {job_id}")
            job = _job_of(row)
            change(job)
            running = job.state is JobState.RUNNING
            cursor.execute(
                """UPDATE dicomweb_jobs SET state = %s, saved = %s, requested = %s,
                       completion = %s,
                       owner = CASE WHEN %s THEN owner END,
                       lease_until = CASE WHEN %s THEN lease_until END
                   WHERE id = %s""",
                (
                    job.state.value,
                    _saved(job),
                    job.requested.value if job.requested else None,
                    job.completion_time,
                    running,
                    running,
                    job_id,
                ),
            )
            return job

        return self.store.transaction(control)

    def load(self, job_id: str) -> Job | None:
        def load(cursor: Cursor[Any]) -> Job | None:
            cursor.execute(f"SELECT {_COLUMNS} FROM dicomweb_jobs WHERE id = %s", (job_id,))
            row = cursor.fetchone()
            return _job_of(row) if row else None

        return self.store.transaction(load)

    def ids(self) -> list[str]:
        def ids(cursor: Cursor[Any]) -> list[str]:
            cursor.execute("SELECT id FROM dicomweb_jobs ORDER BY sequence")
            return [row[0] for row in cursor.fetchall()]

        return self.store.transaction(ids)

    def forget_finished(self, keep: int) -> None:
        """Keep the `keep` jobs finished last (JobsHistorySize), cluster-wide."""
        self.store.transaction(
            lambda cursor: cursor.execute(
                """DELETE FROM dicomweb_jobs WHERE state = ANY(%(finished)s) AND id NOT IN (
                       SELECT id FROM dicomweb_jobs WHERE state = ANY(%(finished)s)
                       ORDER BY completion DESC NULLS LAST, sequence DESC LIMIT %(keep)s)""",
                {"finished": FINISHED_STATES, "keep": keep},
            )
        )


def _one(cursor: Cursor[Any]) -> tuple[Any, ...]:
    row = cursor.fetchone()
    assert row is not None  # statements with RETURNING on an inserted row
    return row
