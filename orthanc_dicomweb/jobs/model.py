"""A job as Orthanc shows one: its type, parameters, state, progress, content and error.

Both engines (`engine.JobEngine` for one node, `cluster.ClusterJobEngine` on a shared PostgreSQL
index) keep jobs of this model, and both save them in the form `Job.to_saved` writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ..errors import HttpError, bad_request

ERROR_SUCCESS = (0, "Success")
ERROR_CANCELED = (37, "The job has been canceled")
ORTHANC_BAD_REQUEST = 8
ORTHANC_NETWORK_PROTOCOL = 9


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


def now() -> str:
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
    creation_time: str = field(default_factory=now)
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
            "Timestamp": now(),
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
            creation_time=saved.get("CreationTime", now()),
            completion_time=saved.get("CompletionTime"),
            runtime=saved.get("EffectiveRuntime", 0.0),
            error_code=saved.get("ErrorCode", 0),
            error_description=saved.get("ErrorDescription", ERROR_SUCCESS[1]),
            error_details=saved.get("ErrorDetails", ""),
            sequence=saved.get("Sequence", 0),
            http_status=saved.get("HttpStatus", 200),
        )


def error_of(error: HttpError) -> tuple[int, str]:
    """Orthanc's error code for a failure (its own when the core failed), and the message."""
    code = getattr(error, "code", None)
    if code is None:
        code = ORTHANC_NETWORK_PROTOCOL if error.status >= 500 else ORTHANC_BAD_REQUEST
    return code, error.message


def request_cancel(job: Job) -> bool:
    """Ask a job to stop: a running one stops at its next step; True when it must be finished
    as canceled now (pending, paused, retrying); 400 once it has succeeded."""
    if job.state is JobState.SUCCESS:
        raise bad_request("Cannot cancel a job that has succeeded")
    if job.state is JobState.RUNNING:
        job.requested = JobState.FAILURE
        return False
    return job.state in (JobState.PENDING, JobState.PAUSED, JobState.RETRY)


def reset_for_resubmit(job: Job) -> None:
    """Clear what a failed run left, so the job runs again from the start; 400 unless failed."""
    if job.state is not JobState.FAILURE:
        raise bad_request(f"Only failed jobs can be resubmitted, not {job.state} ones")
    job.content = {}
    job.progress = 0.0
    job.runtime = 0.0
    job.completion_time = None
    job.error_code, job.error_description = ERROR_SUCCESS
    job.error_details = ""
    job.http_status = 200
