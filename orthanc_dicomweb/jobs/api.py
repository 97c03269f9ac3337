"""Orthanc's `/jobs` routes, serving the plugin's jobs together with the core's own.

The plugin's routes shadow the core's: ids of the plugin's jobs are answered here, every other
id is forwarded to the core, and the lists merge both.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import HttpError
from ..http.bounded import check_brackets
from ..http.web import Request, Response, json_response
from ..orthanc.core import Core, get_json
from .engine import Engine

ACTIONS = ("pause", "resume", "cancel", "resubmit")
# The saved jobs load within about 0.2 s of Orthanc's start: a request meanwhile waits for them
# (rather than miss them, or see a saved job's stale state), and gets a 503 after this long.
RESTORE_WAIT_SECONDS = 5.0


class JobsApi:
    """`GET /jobs`, `GET /jobs/{id}`, `POST /jobs/{id}/{action}`, `GET /jobs/{id}/{output}`."""

    def __init__(self, core: Core, engine: Engine) -> None:
        self.core = core
        self.engine = engine
        self._actions = {action: getattr(engine, action) for action in ACTIONS}

    def list_jobs(self, request: Request) -> Response:
        """The core's jobs then the plugin's (`?expand`: their full descriptions)."""
        expand = "expand" in request.query
        self._wait_for_saved_jobs()
        core_jobs: list[Any] = get_json(self.core, "/jobs?expand" if expand else "/jobs")
        ours = self.engine.ids()
        if expand:
            return json_response(core_jobs + [self.engine.describe(i) for i in ours])
        return json_response(core_jobs + ours)

    def get_job(self, request: Request) -> Response:
        job_id = request.groups[0]
        self._wait_for_saved_jobs()
        if self.engine.get(job_id) is None:
            return Response(self.core.get(f"/jobs/{job_id}"))
        return json_response(self.engine.describe(job_id))

    def act(self, request: Request) -> Response:
        job_id, action = request.groups
        self._wait_for_saved_jobs()
        if action not in self._actions or self.engine.get(job_id) is None:
            check_brackets(request.body, "The body")  # the core's JSON reader dies on deep nesting
            return Response(self.core.post(f"/jobs/{job_id}/{action}", request.body or b"{}"))
        self._actions[action](job_id)
        return json_response({})

    def _wait_for_saved_jobs(self) -> None:
        if not self.engine.wait_restored(RESTORE_WAIT_SECONDS):
            raise HttpError(
                503, "The saved jobs are still being restored", headers={"Retry-After": "1"}
            )

    def job_output(self, request: Request) -> Response:
        """Outputs of the core's jobs (e.g. `archive`); the plugin's jobs have none."""
        job_id, key = request.groups
        body = self.core.get(f"/jobs/{job_id}/{key}")
        return Response(body, _output_type(key, body))


def _output_type(key: str, body: bytes) -> str:
    if key == "archive":
        return "application/zip"
    try:
        json.loads(body)
    except ValueError:
        return "application/octet-stream"
    return "application/json"
