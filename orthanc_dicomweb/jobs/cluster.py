"""The job engine of several Orthancs sharing a PostgreSQL index: every job runs exactly once.

Jobs live in the shared table (`job_leases.LeasedJobs`), not in a node's memory: any node lists
them, shows them and controls them (pause, resume, cancel, resubmit), and each node's workers
claim the next job from the table, whichever node submitted it. A running job's lease is renewed
while it runs; if its node dies, another node takes it over once the lease has expired and goes
on from the content saved at its last progress report (the client's jobs skip what that content
says is done). A restart of every node resumes each job once, the same way.

It offers the interface of `jobs.JobEngine`, which serves a single node (SQLite index).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import Configuration
from ..errors import bad_request, not_found
from ..orthanc.shared_state import store_of
from .engine import JobRunner, run_steps
from .model import (
    ERROR_CANCELED,
    ERROR_SUCCESS,
    FINISHED,
    Job,
    JobState,
    error_of,
    now,
    request_cancel,
    reset_for_resubmit,
)

if TYPE_CHECKING:  # psycopg is imported only when the index is PostgreSQL
    from .leases import LeasedJobs

log = logging.getLogger(__name__)

LEASE_SECONDS = 10.0
"""How long a node may stay silent before its running jobs are taken over."""
RENEW_SECONDS = 2.0
POLL_SECONDS = 0.5
"""How often idle workers look for jobs submitted through other nodes."""
LOST = JobState.PENDING
"""`Job.requested` value of a job another node took over: stop and write nothing."""


class ClusterJobEngine:
    """Claims, runs and controls the jobs of the shared table, `workers` at a time."""

    def __init__(
        self,
        jobs: LeasedJobs,
        workers: int,
        history_size: int,
    ) -> None:
        self.jobs = jobs
        self.workers = max(1, workers)
        self.history_size = history_size
        self._runners: dict[str, JobRunner] = {}
        self._running: dict[str, Job] = {}
        self._changed = threading.Condition()
        self._started = False

    def register(self, job_type: str, runner: JobRunner) -> None:
        self._runners[job_type] = runner

    def change_listener(self, change: str, level: str, resource_id: str) -> None:
        """A `runtime.add_change_listener` callback: claim jobs once Orthanc has started (its
        database is closed while plugins initialize)."""
        if change == "ORTHANC_STARTED":
            self._start_threads()

    def wait_restored(self, timeout: float) -> bool:
        """Always true: every node reads the shared table itself, nothing is restored."""
        return True

    def _start_threads(self) -> None:
        with self._changed:
            if self._started:
                return
            self._started = True
        for _ in range(self.workers):
            threading.Thread(target=self._work, name="dicomweb-job", daemon=True).start()
        threading.Thread(target=self._renew_leases, name="dicomweb-job-leases", daemon=True).start()

    def submit(self, job_type: str, parameters: dict[str, Any], priority: int = 0) -> Job:
        if job_type not in self._runners:
            raise bad_request(f"Unknown job type: {job_type}")
        job = Job(job_type, parameters, priority)
        self.jobs.insert(job)
        with self._changed:
            self._changed.notify_all()
        return job

    def wait(self, job: Job, timeout: float | None = None) -> Job:
        """Block until the job is finished or paused, wherever it runs."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.get(job.id) or job
            if current.state in (*FINISHED, JobState.PAUSED):
                return current
            if deadline is not None and time.monotonic() >= deadline:
                return current
            with self._changed:
                self._changed.wait(POLL_SECONDS / 5)

    # --- what the REST API shows --------------------------------------------------------

    def ids(self) -> list[str]:
        return self.jobs.ids()

    def get(self, job_id: str) -> Job | None:
        """The job as this node runs it (freshest progress), else as the table has it."""
        with self._changed:
            job = self._running.get(job_id)
        return job if job is not None else self.jobs.load(job_id)

    def describe(self, job_id: str) -> dict[str, Any]:
        job = self.get(job_id)
        if job is None:
            raise not_found(f"Unknown job: {job_id}")
        with self._changed:  # a copy: the running job's content changes meanwhile
            return json.loads(json.dumps(job.describe()))

    # --- control, through any node --------------------------------------------------------

    def pause(self, job_id: str) -> None:
        self._control(job_id, _pause)

    def resume(self, job_id: str) -> None:
        self._control(job_id, _resume)

    def cancel(self, job_id: str) -> None:
        self._control(job_id, _cancel)

    def resubmit(self, job_id: str) -> None:
        self._control(job_id, _resubmit)

    def _control(self, job_id: str, change: Callable[[Job], None]) -> None:
        job = self.jobs.control(job_id, change)
        with self._changed:
            local = self._running.get(job_id)
            if local is not None:  # running here: interrupt it now, not at the next renewal
                local.requested = job.requested
            self._changed.notify_all()
        if job.state in FINISHED:
            self.jobs.forget_finished(self.history_size)

    # --- workers ---------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                job = self.jobs.claim(sorted(self._runners), LEASE_SECONDS)
            except Exception:  # the database may be restarting: try again later
                log.exception("Cannot claim a job")
                job = None
            if job is None:
                with self._changed:
                    self._changed.wait(POLL_SECONDS)
                continue
            with self._changed:
                self._running[job.id] = job
            try:
                self._run(job)
            finally:
                with self._changed:
                    self._running.pop(job.id, None)
                    self._changed.notify_all()

    def _run(self, job: Job) -> None:
        started = time.monotonic()
        interrupted, failure = run_steps(self._runners[job.type], self, job)
        with self._changed:
            job.runtime += time.monotonic() - started
            requested, job.requested = job.requested, None
        if interrupted and requested is LOST:
            log.warning("Job %s was taken over by another node", job.id)
            return
        if interrupted and requested is JobState.FAILURE:
            _finish(job, JobState.FAILURE, ERROR_CANCELED, "")
        elif interrupted:
            job.state = JobState.PAUSED
        elif failure is not None:
            job.http_status = failure.status
            details = "" if failure.details is None else json.dumps(failure.details)
            _finish(job, JobState.FAILURE, error_of(failure), details)
        else:
            _finish(job, JobState.SUCCESS, ERROR_SUCCESS, "")
        self._release(job)

    def _release(self, job: Job) -> None:
        try:
            if not self.jobs.release(job):
                log.warning("Job %s was taken over by another node before it ended", job.id)
            elif job.state in FINISHED:
                log.info("Job %s (%s): %s %s", job.id, job.type, job.state, job.error_details)
                self.jobs.forget_finished(self.history_size)
        except Exception:  # the lease expires: another node runs the job again
            log.exception("Cannot write the end of job %s", job.id)

    def _report(self, job: Job, progress: float) -> None:
        """A running job's progress: saved at once, so a takeover goes on from here."""
        with self._changed:
            job.progress = min(1.0, max(0.0, progress))
        try:
            owned, requested = self.jobs.save_progress(job)
        except Exception:  # the job goes on; the lease renewal tells if it was lost
            log.exception("Cannot save the progress of job %s", job.id)
            return
        self._apply(job, owned, requested)

    def _renew_leases(self) -> None:
        while True:
            time.sleep(RENEW_SECONDS)
            with self._changed:
                running = list(self._running.values())
            for job in running:
                try:
                    self._apply(job, *self.jobs.renew(job, LEASE_SECONDS))
                except Exception:
                    log.exception("Cannot renew the lease of job %s", job.id)

    def _apply(self, job: Job, owned: bool, requested: str | None) -> None:
        with self._changed:
            if not owned:
                job.requested = LOST
            elif requested and job.requested is None:
                job.requested = JobState(requested)


# --- state changes asked through the REST API (the job's row is locked meanwhile) -------------


def _pause(job: Job) -> None:
    if job.state is JobState.RUNNING:
        job.requested = JobState.PAUSED
    elif job.state in (JobState.PENDING, JobState.RETRY):
        job.state = JobState.PAUSED
    elif job.state is not JobState.PAUSED:
        raise bad_request(f"Cannot pause a job in state {job.state}")


def _resume(job: Job) -> None:
    if job.state is JobState.RUNNING and job.requested is JobState.PAUSED:
        job.requested = None
    elif job.state is JobState.PAUSED:
        job.state = JobState.PENDING
    else:
        raise bad_request(f"Cannot resume a job in state {job.state}")


def _cancel(job: Job) -> None:
    if request_cancel(job):
        _finish(job, JobState.FAILURE, ERROR_CANCELED, "")


def _resubmit(job: Job) -> None:
    reset_for_resubmit(job)
    job.state = JobState.PENDING


def _finish(job: Job, state: JobState, error: tuple[int, str], details: str) -> None:
    job.state = state
    job.error_code, job.error_description = error
    job.error_details = details
    job.completion_time = now()
    if state is JobState.SUCCESS:
        job.progress = 1.0


def cluster_engine_for(config: Configuration, core: object) -> ClusterJobEngine | None:
    """The shared engine when the index is PostgreSQL and `SaveJobs` is on, else None."""
    store = store_of(core)
    if store is None or not config.save_jobs:
        return None
    from .leases import LeasedJobs

    configuration: Callable[[], dict[str, Any]] = getattr(core, "configuration", dict)
    name = configuration().get("Name", "orthanc")
    owner = f"{name}-{uuid.uuid4().hex[:8]}"
    return ClusterJobEngine(
        LeasedJobs(store, owner), config.concurrent_jobs, config.jobs_history_size
    )
