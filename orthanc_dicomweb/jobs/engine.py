"""The plugin's job engine, following Orthanc's job model.

The Python SDK cannot create core jobs, so the plugin runs its own: a priority queue served by
a bounded pool of threads, the states of Orthanc (Pending, Running, Success, Failure, Paused,
Retry), pause / resume / cancel / resubmit, a bounded history of finished jobs, and, when
`SaveJobs` is true, every job's state saved in the Orthanc database (`store.JobStore`) so that
jobs survive a restart and can be read by any Orthanc sharing the database. The job itself is
`model.Job`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..config import Configuration
from ..errors import HttpError, bad_request, not_found
from ..orthanc.core import GlobalProperties
from .model import (
    ERROR_CANCELED,
    ERROR_SUCCESS,
    FINISHED,
    Job,
    JobInterrupted,
    JobState,
    error_of,
    now,
    request_cancel,
    reset_for_resubmit,
)
from .store import JobStore

log = logging.getLogger(__name__)

SAVE_INTERVAL = 1.0
"""Seconds between two saves of a running job's progress (state changes save at once)."""


def run_steps(runner: JobRunner, engine: Engine, job: Job) -> tuple[bool, HttpError | None]:
    """Runs a job's runner: whether it was interrupted (pause, cancel), and its failure."""
    try:
        runner(JobContext(engine, job))
    except JobInterrupted:
        return True, None
    except HttpError as error:
        return False, error
    except Exception as error:  # a bug in a job must not kill the worker
        log.exception("Job %s (%s) crashed", job.id, job.type)
        return False, HttpError(500, f"Internal error in job {job.type}", str(error))
    return False, None


class Engine(Protocol):
    """What the client, the jobs API and a running job use of an engine: `JobEngine` here, or
    `cluster_jobs.ClusterJobEngine` on a shared PostgreSQL index."""

    def register(self, job_type: str, runner: JobRunner) -> None: ...
    def change_listener(self, change: str, level: str, resource_id: str) -> None: ...
    def wait_restored(self, timeout: float) -> bool: ...
    def submit(self, job_type: str, parameters: dict[str, Any], priority: int = 0) -> Job: ...
    def wait(self, job: Job, timeout: float | None = None) -> Job: ...
    def ids(self) -> list[str]: ...
    def get(self, job_id: str) -> Job | None: ...
    def describe(self, job_id: str) -> dict[str, Any]: ...
    def pause(self, job_id: str) -> None: ...
    def resume(self, job_id: str) -> None: ...
    def cancel(self, job_id: str) -> None: ...
    def resubmit(self, job_id: str) -> None: ...
    def _report(self, job: Job, progress: float) -> None: ...


class JobContext:
    """What a running job sees: its parameters, its content, progress and interruptions."""

    def __init__(self, engine: Engine, job: Job) -> None:
        self._engine = engine
        self._job = job

    @property
    def parameters(self) -> Mapping[str, Any]:
        return self._job.parameters

    @property
    def content(self) -> dict[str, Any]:
        """The job's `Content`, kept across a pause (a resubmit starts from an empty one)."""
        return self._job.content

    def started_content(self, initial: Mapping[str, Any]) -> dict[str, Any]:
        """The job's `Content`, given the `initial` values it does not hold yet (a job resumed
        after a pause, a restart or its node's death keeps what it holds)."""
        for key, value in initial.items():
            self._job.content.setdefault(key, value)
        return self._job.content

    def checkpoint(self) -> None:
        """Stop here if the job was paused or canceled meanwhile."""
        if self._job.requested is not None:
            raise JobInterrupted()

    def report(self, progress: float) -> None:
        """Publish progress (0..1) and content; also a checkpoint."""
        self._engine._report(self._job, progress)
        self.checkpoint()


JobRunner = Callable[[JobContext], None]
"""Does a job's work, updating `context.content`; raises HttpError when it fails."""


class JobEngine:
    """Runs jobs by priority in at most `workers` threads, like Orthanc's jobs engine."""

    def __init__(
        self,
        workers: int = 2,
        history_size: int = 10,
        store: JobStore | None = None,
    ) -> None:
        self.workers = max(1, workers)
        self.history_size = history_size
        self.store = store
        self._runners: dict[str, JobRunner] = {}
        self._jobs: dict[str, Job] = {}
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._sequence = 0
        self._last_save: dict[str, float] = {}
        # Set once the saved jobs are loaded (at once without a store): until then the lists
        # would omit them and a saved job would show its stale state.
        self._restored = threading.Event()
        if store is None:
            self._restored.set()

    def register(self, job_type: str, runner: JobRunner) -> None:
        self._runners[job_type] = runner

    # --- life cycle --------------------------------------------------------------------

    def change_listener(self, change: str, level: str, resource_id: str) -> None:
        """A `runtime.add_change_listener` callback: the saved jobs are loaded once Orthanc has
        started. The database is closed while plugins initialize, and the core logs an error
        for every call made then."""
        if change == "ORTHANC_STARTED" and self.store is not None:
            threading.Thread(
                target=self._restore_logged, name="dicomweb-jobs-restore", daemon=True
            ).start()

    def _restore_logged(self) -> None:
        try:
            self.restore()
        except Exception:
            log.exception("Cannot read the saved jobs; they are not restored")
        finally:
            self._restored.set()  # what is there is all there will be

    def wait_restored(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until the saved jobs are loaded; whether they are."""
        return self._restored.wait(timeout)

    def restore(self) -> None:
        """Load the saved jobs; the ones that were pending or running are queued again."""
        if self.store is None:
            return
        saved = self.store.load_all()
        with self._changed:
            for job in saved:
                if job.state in (JobState.RUNNING, JobState.RETRY):
                    job.state = JobState.PENDING
                self._sequence = max(self._sequence, job.sequence)
                self._jobs.setdefault(job.id, job)
            self._changed.notify_all()
        self._restored.set()
        if any(job.state is JobState.PENDING for job in saved):
            log.info("Restored %d saved jobs", len(saved))
            self._start_workers()

    def submit(self, job_type: str, parameters: dict[str, Any], priority: int = 0) -> Job:
        if job_type not in self._runners:
            raise bad_request(f"Unknown job type: {job_type}")
        job = Job(job_type, parameters, priority)
        with self._changed:
            self._sequence += 1
            job.sequence = self._sequence
            self._jobs[job.id] = job
            self._save(job)
            self._changed.notify_all()
        self._start_workers()
        return job

    def wait(self, job: Job, timeout: float | None = None) -> Job:
        """Block until the job is finished (or paused: a synchronous job cannot go on)."""
        with self._changed:
            self._changed.wait_for(
                lambda: job.state in (*FINISHED, JobState.PAUSED), timeout=timeout
            )
            return job

    # --- what the REST API shows --------------------------------------------------------

    def ids(self) -> list[str]:
        with self._changed:
            return [job.id for job in sorted(self._jobs.values(), key=lambda j: j.sequence)]

    def get(self, job_id: str) -> Job | None:
        """A job of this Orthanc, or one saved by another Orthanc sharing the database."""
        with self._changed:
            job = self._jobs.get(job_id)
        if job is None and self.store is not None:
            job = self.store.load(job_id)
        return job

    def describe(self, job_id: str) -> dict[str, Any]:
        job = self.get(job_id)
        if job is None:
            raise not_found(f"Unknown job: {job_id}")
        with self._changed:
            return json.loads(json.dumps(job.describe()))

    # --- control -----------------------------------------------------------------------

    def pause(self, job_id: str) -> None:
        with self._changed:
            job = self._owned(job_id)
            if job.state is JobState.RUNNING:
                job.requested = JobState.PAUSED
            elif job.state in (JobState.PENDING, JobState.RETRY):
                self._set_state(job, JobState.PAUSED)
            elif job.state is not JobState.PAUSED:
                raise bad_request(f"Cannot pause a job in state {job.state}")

    def resume(self, job_id: str) -> None:
        with self._changed:
            job = self._owned(job_id)
            if job.state is JobState.RUNNING and job.requested is JobState.PAUSED:
                job.requested = None
            elif job.state is JobState.PAUSED:
                self._set_state(job, JobState.PENDING)
            else:
                raise bad_request(f"Cannot resume a job in state {job.state}")
        self._start_workers()

    def cancel(self, job_id: str) -> None:
        with self._changed:
            job = self._owned(job_id)
            if request_cancel(job):
                self._finish(job, JobState.FAILURE, ERROR_CANCELED, "")

    def resubmit(self, job_id: str) -> None:
        """Run a failed job again from the start."""
        with self._changed:
            job = self._owned(job_id)
            reset_for_resubmit(job)
            self._set_state(job, JobState.PENDING)
        self._start_workers()

    def _owned(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise not_found(f"Unknown job: {job_id}")
        return job

    # --- workers -----------------------------------------------------------------------

    def _start_workers(self) -> None:
        with self._changed:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name="dicomweb-job", daemon=True)
                self._threads.append(thread)
                thread.start()

    def _next_pending(self) -> Job | None:
        pending = [j for j in self._jobs.values() if j.state is JobState.PENDING]
        # Higher priority first, then first come first served, as in Orthanc.
        return min(pending, key=lambda j: (-j.priority, j.sequence), default=None)

    def _work(self) -> None:
        while True:
            with self._changed:
                job = self._next_pending()
                if job is None:
                    self._changed.wait(timeout=30)
                    job = self._next_pending()
                    if job is None:
                        continue
                self._set_state(job, JobState.RUNNING)
            self._run(job)

    def _run(self, job: Job) -> None:
        started = time.monotonic()
        interrupted, failure = run_steps(self._runners[job.type], self, job)
        with self._changed:
            job.runtime += time.monotonic() - started
            requested, job.requested = job.requested, None
            if interrupted and requested is JobState.FAILURE:
                self._finish(job, JobState.FAILURE, ERROR_CANCELED, "")
            elif interrupted:
                self._set_state(job, JobState.PAUSED)
            elif failure is not None:
                job.http_status = failure.status
                details = "" if failure.details is None else json.dumps(failure.details)
                self._finish(job, JobState.FAILURE, error_of(failure), details)
            else:
                self._finish(job, JobState.SUCCESS, ERROR_SUCCESS, "")

    def _report(self, job: Job, progress: float) -> None:
        with self._changed:
            job.progress = min(1.0, max(0.0, progress))
            if time.monotonic() - self._last_save.get(job.id, 0.0) >= SAVE_INTERVAL:
                self._save(job)

    # --- state changes (called with the lock held) --------------------------------------

    def _set_state(self, job: Job, state: JobState) -> None:
        job.state = state
        self._save(job)
        self._changed.notify_all()

    def _finish(self, job: Job, state: JobState, error: tuple[int, str], details: str) -> None:
        job.error_code, job.error_description = error
        job.error_details = details
        job.completion_time = now()
        if state is JobState.SUCCESS:
            job.progress = 1.0
        log.info("Job %s (%s): %s %s", job.id, job.type, state, details)
        self._set_state(job, state)
        self._forget_old_jobs()

    def _forget_old_jobs(self) -> None:
        finished = sorted(
            (j for j in self._jobs.values() if j.state in FINISHED),
            key=lambda j: (j.completion_time or "", j.sequence),
        )
        for job in finished[: max(0, len(finished) - self.history_size)]:
            del self._jobs[job.id]
            self._last_save.pop(job.id, None)
            if self.store is not None:
                self.store.delete(job.id)

    def _save(self, job: Job) -> None:
        if self.store is None:
            return
        self._last_save[job.id] = time.monotonic()
        try:
            self.store.save(job)
        except Exception:  # the job goes on even if the database refuses a save
            log.exception("Cannot save job %s", job.id)


def engine_for(config: Configuration, core: object) -> JobEngine:
    """The engine `ConcurrentJobs`, `JobsHistorySize` and `SaveJobs` describe."""
    store = None
    if config.save_jobs and isinstance(core, GlobalProperties):
        store = JobStore(core)
    return JobEngine(config.concurrent_jobs, config.jobs_history_size, store)
