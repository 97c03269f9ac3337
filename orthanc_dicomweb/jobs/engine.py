"""The plugin's job engine, following Orthanc's job model.

The Python SDK cannot create core jobs, so the plugin runs its own: a priority queue served by
a bounded pool of threads, the states of Orthanc (Pending, Running, Success, Failure, Paused,
Retry), pause / resume / cancel / resubmit, a bounded history of finished jobs, and, when
`SaveJobs` is true, every job's state saved in the Orthanc database (one global property per
job) so that jobs survive a restart and can be read by any Orthanc sharing the database.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from ..config import Configuration
from ..errors import HttpError, bad_request, not_found
from ..orthanc.core import GlobalProperties
from ..orthanc.storage_ids import FIRST_JOB_PROPERTY, JOBS_INDEX_PROPERTY

log = logging.getLogger(__name__)


ERROR_SUCCESS = (0, "Success")
ERROR_CANCELED = (37, "The job has been canceled")
ORTHANC_BAD_REQUEST = 8
ORTHANC_NETWORK_PROTOCOL = 9
SAVE_INTERVAL = 1.0
"""Seconds between two saves of a running job's progress (state changes save at once)."""


class JobState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILURE = "Failure"
    PAUSED = "Paused"
    RETRY = "Retry"


FINISHED = (JobState.SUCCESS, JobState.FAILURE)


class JobInterrupted(Exception):
    """Raised inside a running job when it was paused or canceled."""


def _now() -> str:
    """A timestamp as Orthanc writes them, e.g. `20261124T233200.623184`."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")


@dataclass
class Job:
    """One job: what to do (`type`, `parameters`) and where it stands."""

    type: str
    parameters: dict[str, Any]
    priority: int = 0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: JobState = JobState.PENDING
    progress: float = 0.0
    content: dict[str, Any] = field(default_factory=dict)
    creation_time: str = field(default_factory=_now)
    completion_time: str | None = None
    runtime: float = 0.0
    error_code: int = ERROR_SUCCESS[0]
    error_description: str = ERROR_SUCCESS[1]
    error_details: str = ""
    sequence: int = 0
    http_status: int = 200
    """The HTTP status a synchronous caller gets when the job failed."""
    requested: JobState | None = None
    """A pause or cancel asked while running; the worker applies it at the next checkpoint."""

    def describe(self) -> dict[str, Any]:
        """The job as the core's `GET /jobs/{id}` shows one."""
        value = {
            "ID": self.id,
            "Type": self.type,
            "State": self.state.value,
            "Progress": round(self.progress * 100),
            "Priority": self.priority,
            "CreationTime": self.creation_time,
            "EffectiveRuntime": round(self.runtime, 3),
            "Content": self.content,
            "ErrorCode": self.error_code,
            "ErrorDescription": self.error_description,
            "ErrorDetails": self.error_details,
            "Timestamp": _now(),
        }
        if self.completion_time:
            value["CompletionTime"] = self.completion_time
        return value

    def to_saved(self) -> dict[str, Any]:
        return {
            **self.describe(),
            "Parameters": self.parameters,
            "Sequence": self.sequence,
            "HttpStatus": self.http_status,
        }

    @classmethod
    def from_saved(cls, saved: Mapping[str, Any]) -> Job:
        return cls(
            type=saved["Type"],
            parameters=saved.get("Parameters", {}),
            priority=saved.get("Priority", 0),
            id=saved["ID"],
            state=JobState(saved["State"]),
            progress=saved.get("Progress", 0) / 100,
            content=saved.get("Content", {}),
            creation_time=saved.get("CreationTime", _now()),
            completion_time=saved.get("CompletionTime"),
            runtime=saved.get("EffectiveRuntime", 0.0),
            error_code=saved.get("ErrorCode", 0),
            error_description=saved.get("ErrorDescription", ERROR_SUCCESS[1]),
            error_details=saved.get("ErrorDetails", ""),
            sequence=saved.get("Sequence", 0),
            http_status=saved.get("HttpStatus", 200),
        )


def _error_of(error: HttpError) -> tuple[int, str]:
    """Orthanc's error code for a failure (its own when the core failed), and the message."""
    code = getattr(error, "code", None)
    if code is None:
        code = ORTHANC_NETWORK_PROTOCOL if error.status >= 500 else ORTHANC_BAD_REQUEST
    return code, error.message


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


class JobStore:
    """Saves each job in its own global property, with an index of the saved jobs."""

    def __init__(self, properties: GlobalProperties) -> None:
        self.properties = properties
        self._lock = threading.Lock()

    def _index(self) -> dict[str, int]:
        text = self.properties.get_global_property(JOBS_INDEX_PROPERTY)
        try:
            index = json.loads(text) if text else {}
        except ValueError:
            log.error("Unreadable index of saved jobs; starting with no saved job")
            return {}
        return index if isinstance(index, dict) else {}

    def _write_index(self, index: dict[str, int]) -> None:
        self.properties.set_global_property(JOBS_INDEX_PROPERTY, json.dumps(index))

    def save(self, job: Job) -> None:
        with self._lock:
            index = self._index()
            key = index.get(job.id)
            if key is None:
                used = set(index.values())
                key = next(k for k in range(FIRST_JOB_PROPERTY, 1 << 30) if k not in used)
                index[job.id] = key
                self._write_index(index)
            self.properties.set_global_property(key, json.dumps(job.to_saved()))

    def load(self, job_id: str) -> Job | None:
        key = self._index().get(job_id)
        return self._read(key) if key is not None else None

    def load_all(self) -> list[Job]:
        jobs = (self._read(key) for key in self._index().values())
        return [job for job in jobs if job is not None]

    def _read(self, key: int) -> Job | None:
        text = self.properties.get_global_property(key)
        try:
            return Job.from_saved(json.loads(text)) if text else None
        except (ValueError, KeyError, TypeError):
            log.error("Unreadable saved job in global property %d; ignored", key)
            return None

    def delete(self, job_id: str) -> None:
        with self._lock:
            index = self._index()
            key = index.pop(job_id, None)
            if key is not None:
                self.properties.set_global_property(key, "")
                self._write_index(index)


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
            if job.state is JobState.RUNNING:
                job.requested = JobState.FAILURE
            elif job.state in (JobState.PENDING, JobState.PAUSED, JobState.RETRY):
                self._finish(job, JobState.FAILURE, ERROR_CANCELED, "")
            elif job.state is JobState.SUCCESS:
                raise bad_request("Cannot cancel a job that has succeeded")

    def resubmit(self, job_id: str) -> None:
        """Run a failed job again from the start."""
        with self._changed:
            job = self._owned(job_id)
            if job.state is not JobState.FAILURE:
                raise bad_request(f"Only failed jobs can be resubmitted, not {job.state} ones")
            job.content = {}
            job.progress = 0.0
            job.runtime = 0.0
            job.completion_time = None
            job.error_code, job.error_description = ERROR_SUCCESS
            job.error_details = ""
            job.http_status = 200
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
                self._finish(job, JobState.FAILURE, _error_of(failure), details)
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
        job.completion_time = _now()
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
