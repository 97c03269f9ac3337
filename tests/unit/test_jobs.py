"""The job engine: priorities, states, control, history and saved jobs (no Orthanc)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.jobs.engine import JobContext, JobEngine, engine_for
from orthanc_dicomweb.jobs.model import Job, JobState
from orthanc_dicomweb.jobs.store import JobStore
from orthanc_dicomweb.orthanc.storage_ids import JOBS_INDEX_PROPERTY
from tests import helpers
from tests.fake_core import PropertiesCore


def wait_for(condition: Callable[[], object]) -> None:
    helpers.wait_for(condition, timeout=5, interval=0.01)


def finished(engine: JobEngine, job: Job) -> Job:
    return engine.wait(job, timeout=5)


def test_a_job_runs_and_reports_its_content() -> None:
    engine = JobEngine()

    def work(context: JobContext) -> None:
        context.content["Echo"] = context.parameters["Value"]
        context.report(0.5)

    engine.register("Echo", work)
    job = finished(engine, engine.submit("Echo", {"Value": 42}))
    described = engine.describe(job.id)
    assert described["State"] == "Success"
    assert described["Progress"] == 100
    assert described["Content"] == {"Echo": 42}
    assert described["Type"] == "Echo"
    assert described["ErrorCode"] == 0
    assert {"CreationTime", "CompletionTime", "EffectiveRuntime", "Timestamp"} <= set(described)


def test_jobs_run_by_priority_then_in_order() -> None:
    engine = JobEngine(workers=1)
    gate = threading.Event()
    order: list[str] = []
    engine.register("Gate", lambda context: gate.wait(5))
    engine.register("Record", lambda context: order.append(context.parameters["Name"]))
    blocker = engine.submit("Gate", {})
    wait_for(lambda: blocker.state is JobState.RUNNING)
    jobs = [
        engine.submit("Record", {"Name": "low"}, priority=-5),
        engine.submit("Record", {"Name": "first"}, priority=3),
        engine.submit("Record", {"Name": "high"}, priority=10),
        engine.submit("Record", {"Name": "second"}, priority=3),
    ]
    gate.set()
    for job in jobs:
        finished(engine, job)
    assert order == ["high", "first", "second", "low"]


def test_workers_are_bounded() -> None:
    engine = JobEngine(workers=2)
    running = 0
    most = 0
    lock = threading.Lock()

    def work(context: JobContext) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    engine.register("Work", work)
    jobs = [engine.submit("Work", {}) for _ in range(6)]
    for job in jobs:
        finished(engine, job)
    assert most == 2


def stepping_engine(steps: int = 200) -> tuple[JobEngine, threading.Event]:
    """An engine whose `Steps` jobs count up with a checkpoint at each step."""
    engine = JobEngine()
    started = threading.Event()

    def work(context: JobContext) -> None:
        started.set()
        start = context.content.get("Done", 0)
        for step in range(start, steps):
            time.sleep(0.005)
            context.content["Done"] = step + 1
            context.report((step + 1) / steps)

    engine.register("Steps", work)
    return engine, started


def test_cancel_stops_a_running_job_promptly() -> None:
    engine, started = stepping_engine()
    job = engine.submit("Steps", {})
    started.wait(5)
    engine.cancel(job.id)
    finished(engine, job)
    described = engine.describe(job.id)
    assert described["State"] == "Failure"
    assert described["ErrorDescription"] == "The job has been canceled"
    assert described["Content"]["Done"] < 200


def test_pause_then_resume_goes_on_where_it_stopped() -> None:
    engine, started = stepping_engine()
    job = engine.submit("Steps", {})
    started.wait(5)
    engine.pause(job.id)
    wait_for(lambda: job.state is JobState.PAUSED)
    done_when_paused = job.content["Done"]
    assert 0 < done_when_paused < 200
    engine.resume(job.id)
    finished(engine, job)
    assert job.state is JobState.SUCCESS
    assert job.content["Done"] == 200


def test_resubmit_runs_a_failed_job_again() -> None:
    engine = JobEngine()
    attempts: list[int] = []

    def flaky(context: JobContext) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise HttpError(502, "DICOMweb server far: unreachable", "refused")
        context.content["Ok"] = True

    engine.register("Flaky", flaky)
    job = finished(engine, engine.submit("Flaky", {}))
    failed = engine.describe(job.id)
    assert failed["State"] == "Failure"
    assert failed["ErrorDescription"] == "DICOMweb server far: unreachable"
    assert failed["ErrorCode"] == 9
    assert job.http_status == 502
    engine.resubmit(job.id)
    finished(engine, job)
    assert engine.describe(job.id)["State"] == "Success"
    assert engine.describe(job.id)["Content"] == {"Ok": True}


def test_a_crash_in_a_job_is_a_failure_not_a_dead_worker() -> None:
    engine = JobEngine(workers=1)
    engine.register("Crash", lambda context: 1 / 0)
    engine.register("Fine", lambda context: None)
    crashed = finished(engine, engine.submit("Crash", {}))
    assert crashed.state is JobState.FAILURE
    assert finished(engine, engine.submit("Fine", {})).state is JobState.SUCCESS


@pytest.mark.parametrize(
    ("action", "state"),
    [("resume", JobState.SUCCESS), ("resubmit", JobState.SUCCESS), ("cancel", JobState.SUCCESS)],
)
def test_wrong_transitions_are_400(action: str, state: JobState) -> None:
    engine = JobEngine()
    engine.register("Fine", lambda context: None)
    job = finished(engine, engine.submit("Fine", {}))
    assert job.state is state
    with pytest.raises(HttpError) as raised:
        getattr(engine, action)(job.id)
    assert raised.value.status == 400


def test_unknown_jobs_and_types() -> None:
    engine = JobEngine()
    with pytest.raises(HttpError) as raised:
        engine.pause("nope")
    assert raised.value.status == 404
    with pytest.raises(HttpError) as raised:
        engine.describe("nope")
    assert raised.value.status == 404
    with pytest.raises(HttpError) as raised:
        engine.submit("Unknown", {})
    assert raised.value.status == 400


def test_history_keeps_the_last_finished_jobs() -> None:
    properties = PropertiesCore()
    engine = JobEngine(workers=1, history_size=2, store=JobStore(properties))
    engine.register("Fine", lambda context: None)
    jobs = [finished(engine, engine.submit("Fine", {})) for _ in range(4)]
    assert engine.ids() == [jobs[2].id, jobs[3].id]
    assert JobStore(properties).load(jobs[0].id) is None
    assert JobStore(properties).load(jobs[3].id) is not None


def test_saved_jobs_survive_a_restart() -> None:
    properties = PropertiesCore()
    first = JobEngine(workers=1, store=JobStore(properties))
    gate = threading.Event()
    first.register("Gate", lambda context: gate.wait(5))
    first.register("Fine", lambda context: context.content.update(Done=True))
    blocker = first.submit("Gate", {})
    wait_for(lambda: blocker.state is JobState.RUNNING)
    waiting = first.submit("Fine", {"Name": "waiting"}, priority=4)
    paused = first.submit("Fine", {})
    first.pause(paused.id)
    # "Restart": a new engine on the same database; the blocked worker is abandoned.
    second = JobEngine(workers=1, store=JobStore(properties))
    second.register("Gate", lambda context: None)
    second.register("Fine", lambda context: context.content.update(Done=True))
    second.restore()
    gate.set()
    assert set(second.ids()) == {blocker.id, waiting.id, paused.id}
    for job_id in (blocker.id, waiting.id):
        job = second.get(job_id)
        assert job is not None
        finished(second, job)
        assert job.state is JobState.SUCCESS
    restored_waiting = second.describe(waiting.id)
    assert restored_waiting["Priority"] == 4
    assert restored_waiting["Content"] == {"Done": True}
    assert second.describe(paused.id)["State"] == "Paused"


class ClosedUntilStarted(PropertiesCore):
    """A database the core refuses to touch while plugins initialize (it logs an error)."""

    started = False

    def get_global_property(self, key: int) -> str:
        assert self.started, "database read during the plugin's initialization"
        return super().get_global_property(key)


def test_saved_jobs_are_restored_once_orthanc_has_started() -> None:
    properties = ClosedUntilStarted()
    engine = JobEngine(workers=1, store=JobStore(properties))
    engine.register("Fine", lambda context: context.content.update(Done=True))
    engine.change_listener("NEW_INSTANCE", "INSTANCE", "x")  # not yet: nothing is read
    properties.started = True
    saved = Job("Fine", {})
    JobStore(properties).save(saved)
    engine.change_listener("ORTHANC_STARTED", "NONE", "")
    wait_for(lambda: saved.id in engine.ids())
    job = engine.get(saved.id)
    assert job is not None and finished(engine, job).state is JobState.SUCCESS


def test_another_engine_on_the_database_sees_saved_jobs() -> None:
    properties = PropertiesCore()
    first = JobEngine(store=JobStore(properties))
    first.register("Fine", lambda context: None)
    job = finished(first, first.submit("Fine", {}))
    other = JobEngine(store=JobStore(properties))
    assert other.describe(job.id)["State"] == "Success"


def test_unreadable_saved_state_is_ignored() -> None:
    properties = PropertiesCore()
    properties.set_global_property(JOBS_INDEX_PROPERTY, "{not json")
    engine = JobEngine(store=JobStore(properties))
    engine.restore()
    assert engine.ids() == []


def test_engine_follows_the_configuration() -> None:
    config = Configuration(concurrent_jobs=3, jobs_history_size=7, save_jobs=True)
    engine = engine_for(config, PropertiesCore())
    assert (engine.workers, engine.history_size) == (3, 7)
    assert engine.store is not None
    assert engine_for(Configuration(save_jobs=False), PropertiesCore()).store is None
    assert engine_for(config, object()).store is None
