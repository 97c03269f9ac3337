"""Shared state without a cluster: where it lives, and the job transitions of the cluster engine."""

from __future__ import annotations

import pytest

from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.jobs import cluster as cluster_jobs
from orthanc_dicomweb.jobs.model import ERROR_CANCELED, Job, JobState
from orthanc_dicomweb.orthanc.postgres_store import connection_info
from orthanc_dicomweb.orthanc.shared_state import SharedLock, claim, open_store


def test_the_connection_is_the_index_plugins_own() -> None:
    assert connection_info({}) is None
    assert connection_info({"PostgreSQL": {"EnableIndex": False}}) is None
    uri = "postgresql:///orthanc_db?user=orthanc"
    assert connection_info({"PostgreSQL": {"EnableIndex": True, "ConnectionUri": uri}}) == uri
    section = {"EnableIndex": True, "Host": "db", "Port": 5433, "Username": "o", "Password": ""}
    info = connection_info({"PostgreSQL": section})
    assert info is not None and "host=db" in info and "port=5433" in info and "user=o" in info


def test_on_sqlite_nothing_is_shared_and_every_claim_is_granted() -> None:
    assert open_store({"Name": "single"}) is None
    assert claim(object(), lambda: pytest.fail("no name needed"), 10)
    lock = SharedLock(object(), "servers")
    with lock, lock:  # reentrant
        pass


def job(state: JobState) -> Job:
    return Job("type", {}, state=state)


def test_pause_and_resume_of_a_running_job_are_requests_to_its_node() -> None:
    running = job(JobState.RUNNING)
    cluster_jobs._pause(running)
    assert (running.state, running.requested) == (JobState.RUNNING, JobState.PAUSED)
    cluster_jobs._resume(running)
    assert running.requested is None
    pending = job(JobState.PENDING)
    cluster_jobs._pause(pending)
    assert pending.state is JobState.PAUSED
    cluster_jobs._resume(pending)
    assert pending.state is JobState.PENDING


def test_cancel_and_resubmit() -> None:
    paused = job(JobState.PAUSED)
    cluster_jobs._cancel(paused)
    assert paused.state is JobState.FAILURE
    assert (paused.error_code, paused.error_description) == ERROR_CANCELED
    paused.content = {"Instances": ["a"]}
    cluster_jobs._resubmit(paused)
    assert (paused.state, paused.content, paused.completion_time) == (JobState.PENDING, {}, None)
    running = job(JobState.RUNNING)
    cluster_jobs._cancel(running)
    assert running.requested is JobState.FAILURE


@pytest.mark.parametrize(
    ("change", "state"),
    [
        (cluster_jobs._pause, JobState.SUCCESS),
        (cluster_jobs._resume, JobState.PENDING),
        (cluster_jobs._cancel, JobState.SUCCESS),
        (cluster_jobs._resubmit, JobState.RUNNING),
    ],
)
def test_impossible_changes_are_refused_with_400(change, state: JobState) -> None:
    with pytest.raises(HttpError) as refused:
        change(job(state))
    assert refused.value.status == 400
