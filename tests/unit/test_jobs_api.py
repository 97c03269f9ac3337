"""`/jobs` while the saved jobs are being restored after a start (no Orthanc)."""

from __future__ import annotations

import json
import threading

import pytest

from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.web import Request, handle
from orthanc_dicomweb.jobs import api as jobs_api
from orthanc_dicomweb.jobs.api import JobsApi
from orthanc_dicomweb.jobs.engine import JobEngine
from orthanc_dicomweb.jobs.store import JobStore
from tests.fake_core import PropertiesCore
from tests.unit.fakes import FakeCore
from tests.unit.test_jobs import finished


def saved_job(properties: PropertiesCore) -> str:
    """The id of a finished job saved by an engine that is then gone."""
    first = JobEngine(store=JobStore(properties))
    first.register("Fine", lambda context: None)
    return finished(first, first.submit("Fine", {})).id


def api_after_restart(properties: PropertiesCore) -> tuple[JobsApi, JobEngine]:
    engine = JobEngine(store=JobStore(properties))
    engine.register("Fine", lambda context: None)
    core = FakeCore({("GET", "/jobs"): [], ("POST", "/jobs/core-job/pause"): {}})
    return JobsApi(core, engine), engine


def test_requests_during_the_restore_wait_for_it() -> None:
    properties = PropertiesCore()
    job_id = saved_job(properties)
    api, engine = api_after_restart(properties)
    threading.Timer(0.2, engine.change_listener, ("ORTHANC_STARTED", "NONE", "")).start()
    listed = api.list_jobs(Request("GET", "/jobs"))  # was: [] (the saved job missing)
    assert json.loads(listed.body) == [job_id]
    assert json.loads(api.get_job(Request("GET", f"/jobs/{job_id}", (job_id,))).body)["ID"]
    with pytest.raises(HttpError) as raised:  # was a 404: the job unknown to the engine
        api.act(Request("POST", f"/jobs/{job_id}/resubmit", (job_id, "resubmit")))
    assert raised.value.status == 400  # known, and finished with success


def test_a_restore_that_never_ends_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_api, "RESTORE_WAIT_SECONDS", 0.05)
    api, _ = api_after_restart(PropertiesCore())
    answer = handle({"GET": api.list_jobs}, Request("GET", "/jobs"))
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"


def test_a_failed_restore_does_not_block_the_routes() -> None:
    properties = PropertiesCore()
    api, engine = api_after_restart(properties)
    engine.store.load_all = lambda: 1 / 0  # type: ignore[method-assign,union-attr]
    engine._restore_logged()
    assert json.loads(api.list_jobs(Request("GET", "/jobs")).body) == []


def test_an_engine_without_saved_jobs_is_ready_at_once() -> None:
    assert JobEngine().wait_restored(0)
