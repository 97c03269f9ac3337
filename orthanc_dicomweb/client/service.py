"""The DICOMweb client's routes, `{root}servers/{name}/get|qido|delete|stow|retrieve|wado`.

`DicomWebClient` is what the route table calls: proxied calls go to `proxy.ProxiedCalls`;
STOW-RS pushes (`push.Push`) and WADO-RS retrieves (`fetch.Fetch`) are submitted as jobs of the
plugin's engine, and a synchronous call waits for its job. Request bodies are read by `bodies`.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import Configuration
from ..errors import HttpError
from ..http.web import Request, Response, json_response
from ..jobs.engine import Engine
from ..jobs.model import Job, JobState
from ..orthanc.core import Core
from .bodies import json_object, priority, relative_uri, resources, retrieve_uri, synchronous
from .fetch import RETRIEVE_JOB, Fetch
from .proxy import ProxiedCalls
from .push import STOW_JOB, Push
from .servers import ServerRegistry


class DicomWebClient:
    """`{root}servers/{name}/...`: proxied calls, and STOW-RS / WADO-RS jobs."""

    def __init__(
        self, config: Configuration, core: Core, servers: ServerRegistry, engine: Engine
    ) -> None:
        self.servers = servers
        self.engine = engine
        self.proxy = ProxiedCalls(config, servers)
        self.push = Push(config, core, servers)
        self.fetch = Fetch(config, core, servers)
        engine.register(STOW_JOB, self.push.run)
        engine.register(RETRIEVE_JOB, self.fetch.run)

    def get(self, request: Request) -> Response:
        return self.proxy.get(request)

    def qido(self, request: Request) -> Response:
        return self.proxy.qido(request)

    def delete(self, request: Request) -> Response:
        return self.proxy.delete(request)

    def stow(self, request: Request) -> Response:
        """Push Orthanc resources (any level) to the remote's STOW-RS."""
        name = request.groups[0]
        self.servers.find(name)
        body = json_object(request.body)
        return self._start(request, STOW_JOB, self.push.parameters(name, body), body)

    def retrieve(self, request: Request) -> Response:
        """WADO-RS retrieve of studies / series / instances given by DICOM UIDs."""
        body = json_object(request.body)
        asked = resources(body)
        uris = [retrieve_uri(resource) for resource in asked]
        parameters = self.fetch.parameters(request.groups[0], uris, asked, body)
        return self._start(request, RETRIEVE_JOB, parameters, body)

    def wado(self, request: Request) -> Response:
        """WADO-RS retrieve of one `Uri`."""
        body = json_object(request.body)
        uri = relative_uri(body.get("Uri"))
        parameters = self.fetch.parameters(request.groups[0], [uri], [uri], body)
        return self._start(request, RETRIEVE_JOB, parameters, body)

    def _start(
        self, request: Request, job_type: str, parameters: dict[str, Any], body: dict[str, Any]
    ) -> Response:
        """Submit the job; synchronous calls wait and answer its content (or its error)."""
        waits, job_priority = synchronous(body), priority(body)
        job = self.engine.submit(job_type, parameters, job_priority)
        if waits:
            job = self.engine.wait(job)
            if job.state is JobState.SUCCESS:
                return json_response(job.content)
            if job.state is JobState.FAILURE:
                raise HttpError(job.http_status, job.error_description, _details_of(job))
        return json_response({"ID": job.id, "Path": jobs_path(request.path, job.id)})


def jobs_path(request_path: str, job_id: str) -> str:
    """`Path` of a job relative to the request's URI, so it works behind a reverse proxy."""
    depth = request_path.strip("/").count("/")
    return "../" * depth + f"jobs/{job_id}"


def _details_of(job: Job) -> Any:
    try:
        return json.loads(job.error_details) if job.error_details else None
    except ValueError:
        return job.error_details
