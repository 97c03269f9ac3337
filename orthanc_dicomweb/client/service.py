"""The DICOMweb client: proxied calls, and push / retrieve jobs.

`DicomWebClient` serves `{root}servers/{name}/get|qido|delete|stow|retrieve|wado` through
`remote.RemoteServer`; STOW-RS pushes and WADO-RS retrieves run as jobs of the plugin's engine.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from ..config import Configuration, ServerDefinition
from ..dicom.assembly import InvalidInstance, check_nesting
from ..errors import HttpError, bad_request
from ..http.bounded import loads_json
from ..http.multipart import boundary_of, encode_part, iter_streamed_parts, new_boundary
from ..http.multipart import multipart_content_type as related_content_type
from ..http.negotiation import parse_media_type
from ..http.web import Request, Response, json_response
from ..jobs.engine import Engine, Job, JobContext, JobState
from ..orthanc.core import Core, CoreError, get_if_exists, get_json
from ..orthanc.resources import is_orthanc_id, validate_uid
from .remote import RemoteServer
from .servers import ServerRegistry

log = logging.getLogger(__name__)

STOW_JOB = "DicomWebStowClient"
RETRIEVE_JOB = "DicomWebWadoRetrieveClient"
MEGABYTE = 1024 * 1024
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"
_LEVELS = {"Study": "studies", "Series": "series", "Instance": "instances"}


# --- request bodies ----------------------------------------------------------------------


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = loads_json(body or b"{}", "The body")
    except ValueError as error:
        raise bad_request("The body must be a JSON object", str(error)) from None
    if not isinstance(value, dict):
        raise bad_request("The body must be a JSON object")
    return value


def _string_map(body: Mapping[str, Any], name: str) -> dict[str, str]:
    value = body.get(name, {})
    if not isinstance(value, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
    ):
        raise bad_request(f'"{name}" must be a JSON object of strings')
    return {str(k): str(v) for k, v in value.items()}


def relative_uri(value: Any) -> str:
    """A path below the server's URL (`/studies`, `studies/1.2/series`); 400 otherwise.

    The path is checked as the remote may read it: percent-decoded (as often as it decodes to
    something else), since `%2e%2e/` or `%2F..` would climb out of the server's base path there
    with its credentials. The value itself is sent unchanged.
    """
    if not isinstance(value, str) or not value.strip():
        raise bad_request('"Uri" must be a non-empty string')
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        raise bad_request(f'"Uri" must be a path below the server URL, not {value!r}')
    if any(ord(c) < 33 or c in '\\"<>' for c in value):
        raise bad_request(f'"Uri" contains forbidden characters: {value!r}')
    path = _fully_decoded(parts.path)
    if any(ord(c) < 33 or c in "\\" for c in path) or {".", ".."} & set(path.split("/")):
        raise bad_request(
            f'"Uri" must stay below the server URL (no "..", encoded or not): {value!r}'
        )
    return value.lstrip("/")


def _fully_decoded(path: str) -> str:
    """`path` percent-decoded until nothing changes (`%252e` is `%2e`, then `.`)."""
    for _ in range(8):  # a bound: each round shortens the text
        decoded = unquote(path)
        if decoded == path:
            return path
        path = decoded
    raise bad_request(f'"Uri" is percent-encoded too many times: {path!r}')


def _priority(body: Mapping[str, Any]) -> int:
    value = body.get("Priority", 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request('"Priority" must be an integer')
    return value


def _synchronous(body: Mapping[str, Any]) -> bool:
    value = body.get("Synchronous", True)
    if not isinstance(value, bool):
        raise bad_request('"Synchronous" must be true or false')
    return value


def _resources(body: Mapping[str, Any]) -> list[Any]:
    value = body.get("Resources")
    if not isinstance(value, list) or not value:
        raise bad_request('The body must contain a non-empty array "Resources"')
    return value


def retrieve_uri(resource: Any) -> str:
    """`studies/{Study}[/series/{Series}[/instances/{Instance}]]` from DICOM UIDs."""
    if not isinstance(resource, dict) or not isinstance(resource.get("Study"), str):
        raise bad_request('Each resource to retrieve is an object with at least "Study"')
    uri = "studies/" + validate_uid(resource["Study"], "StudyInstanceUID")
    if resource.get("Series") is not None:
        uri += "/series/" + validate_uid(str(resource["Series"]), "SeriesInstanceUID")
        if resource.get("Instance") is not None:
            uri += "/instances/" + validate_uid(str(resource["Instance"]), "SOPInstanceUID")
    elif resource.get("Instance") is not None:
        raise bad_request('An "Instance" to retrieve needs its "Series"')
    return uri


def delete_uri(body: Mapping[str, Any]) -> str:
    """What to delete: a `Uri`, or `Level` with the UIDs down to it (the official form)."""
    if "Uri" in body:
        return relative_uri(body["Uri"])
    level = body.get("Level")
    if level not in _LEVELS:
        raise bad_request('Give "Uri", or "Level" (Study, Series, Instance) and the UIDs')
    keys = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    depth = list(_LEVELS).index(level) + 1
    uids = [validate_uid(str(body.get(key, "")), key) for key in keys[:depth]]
    segments = list(_LEVELS.values())[:depth]
    return "/".join(f"{segment}/{uid}" for segment, uid in zip(segments, uids, strict=True))


def jobs_path(request_path: str, job_id: str) -> str:
    """`Path` of a job relative to the request's URI, so it works behind a reverse proxy."""
    depth = request_path.strip("/").count("/")
    return "../" * depth + f"jobs/{job_id}"


# --- the service -------------------------------------------------------------------------


class DicomWebClient:
    """`{root}servers/{name}/...`: proxied calls, and STOW-RS / WADO-RS jobs."""

    def __init__(
        self, config: Configuration, core: Core, servers: ServerRegistry, engine: Engine
    ) -> None:
        self.config = config
        self.core = core
        self.servers = servers
        self.engine = engine
        engine.register(STOW_JOB, self.run_stow)
        engine.register(RETRIEVE_JOB, self.run_retrieve)

    def _remote(self, name: str, headers: Mapping[str, str] | None = None) -> RemoteServer:
        return RemoteServer(self.config, self.servers.find(name), headers)

    # --- proxied calls ------------------------------------------------------------------

    def get(self, request: Request) -> Response:
        """GET `Uri` on the remote; its status, content type and body come back."""
        body = _json_object(request.body)
        uri = relative_uri(body.get("Uri"))
        with self._remote(request.groups[0], _string_map(body, "HttpHeaders")) as remote:
            arguments = _string_map(body, "Arguments")
            answer = remote.request("GET", uri, params=arguments, follow_redirects=True)
            content_type = answer.headers.get("Content-Type", "application/octet-stream")
            return Response(answer.content, content_type)

    def qido(self, request: Request) -> Response:
        """QIDO-RS `Uri` with `Arguments`; the remote's DICOM JSON, checked."""
        body = _json_object(request.body)
        uri = relative_uri(body.get("Uri"))
        headers = {"Accept": DICOM_JSON, **_string_map(body, "HttpHeaders")}
        with self._remote(request.groups[0], headers) as remote:
            arguments = _string_map(body, "Arguments")
            answer = remote.request("GET", uri, params=arguments, follow_redirects=True)
            if not answer.content.strip():
                return json_response([])  # 204 No Content: nothing matched
            try:
                return json_response(loads_json(answer.content, remote.name, status=502))
            except ValueError:
                raise HttpError(
                    502,
                    f"DICOMweb server {remote.name} answered something that is not JSON "
                    f"to QIDO-RS {uri}",
                    answer.text[:500],
                ) from None

    def delete(self, request: Request) -> Response:
        name = request.groups[0]
        server = self.servers.find(name)
        if not server.has_delete:
            raise bad_request(f'DICOMweb server {name} does not allow DELETE (see "HasDelete")')
        body = _json_object(request.body)
        uri = delete_uri(body)
        with self._remote(name, _string_map(body, "HttpHeaders")) as remote:
            remote.request("DELETE", uri)
        return json_response({})

    # --- jobs ---------------------------------------------------------------------------

    def stow(self, request: Request) -> Response:
        """Push Orthanc resources (any level) to the remote's STOW-RS."""
        name = request.groups[0]
        self.servers.find(name)
        body = _json_object(request.body)
        resources: dict[str, list[str]] = {}
        instances: list[str] = []
        for value in _resources(body):
            level, found = self._instances_of(self._orthanc_id(value))
            if level != "Instances":
                resources.setdefault(level, []).append(value)
            instances += found
        instances = list(dict.fromkeys(instances))
        parameters = {
            "Server": name,
            # The official plugin's form: the resources given, by level, and every instance.
            "Resources": {**resources, "Instances": instances},
            "Instances": instances,
            "HttpHeaders": _string_map(body, "HttpHeaders"),
        }
        return self._start(request, STOW_JOB, parameters, body)

    def retrieve(self, request: Request) -> Response:
        """WADO-RS retrieve of studies / series / instances given by DICOM UIDs."""
        resources = _resources(_json_object(request.body))
        return self._start_retrieve(request, [retrieve_uri(r) for r in resources], resources)

    def wado(self, request: Request) -> Response:
        """WADO-RS retrieve of one `Uri`."""
        uri = relative_uri(_json_object(request.body).get("Uri"))
        return self._start_retrieve(request, [uri], [uri])

    def _start_retrieve(self, request: Request, uris: list[str], resources: list[Any]) -> Response:
        name = request.groups[0]
        self.servers.find(name)
        if self.config.read_only:
            raise HttpError(403, "Orthanc is read-only: nothing can be retrieved into it")
        body = _json_object(request.body)
        parameters = {
            "Server": name,
            "Resources": resources,
            "Uris": uris,
            "HttpHeaders": _string_map(body, "HttpHeaders"),
            "Arguments": _string_map(body, "Arguments"),
        }
        return self._start(request, RETRIEVE_JOB, parameters, body)

    def _start(
        self, request: Request, job_type: str, parameters: dict[str, Any], body: dict[str, Any]
    ) -> Response:
        """Submit the job; synchronous calls wait and answer its content (or its error)."""
        synchronous, priority = _synchronous(body), _priority(body)
        job = self.engine.submit(job_type, parameters, priority)
        if synchronous:
            job = self.engine.wait(job)
            if job.state is JobState.SUCCESS:
                return json_response(job.content)
            if job.state is JobState.FAILURE:
                raise HttpError(job.http_status, job.error_description, _details_of(job))
        return json_response({"ID": job.id, "Path": jobs_path(request.path, job.id)})

    def _orthanc_id(self, value: Any) -> str:
        if not is_orthanc_id(value):
            raise bad_request(f"Not an Orthanc identifier: {value!r}")
        return value

    def _instances_of(self, orthanc_id: str) -> tuple[str, list[str]]:
        """The level ("Patients", "Studies", "Series", "Instances") of a resource given by its
        Orthanc id, and its instances."""
        if get_if_exists(self.core, f"/instances/{orthanc_id}") is not None:
            return "Instances", [orthanc_id]
        for level, key in (("series", "Series"), ("studies", "Studies"), ("patients", "Patients")):
            # The core answers [] for /series/{study id}/instances: check the level first.
            if get_if_exists(self.core, f"/{level}/{orthanc_id}") is not None:
                found = get_json(self.core, f"/{level}/{orthanc_id}/instances")
                return key, [i["ID"] for i in found]
        raise HttpError(404, f"Unknown Orthanc resource: {orthanc_id}")

    # --- STOW-RS push -------------------------------------------------------------------

    def run_stow(self, context: JobContext) -> None:
        """Send the instances in requests bounded by StowMaxInstances and StowMaxSize."""
        parameters = context.parameters
        instances: list[str] = parameters["Instances"]
        content = context.content
        content.setdefault("Server", parameters["Server"])
        content.setdefault("Resources", parameters["Resources"])
        content.setdefault("InstancesCount", str(len(instances)))
        content.setdefault("Instances", [])
        content.setdefault("FailedInstances", [])
        content.setdefault("RemoteAnswers", [])
        content.setdefault("NetworkSizeMB", "0")
        content.setdefault("SentBytes", 0)
        server = self.servers.find(parameters["Server"])
        with (
            RemoteServer(self.config, server, parameters["HttpHeaders"]) as remote,
            ThreadPoolExecutor(1, thread_name_prefix="dicomweb-stow-reader") as reader,
        ):
            position = len(content["Instances"])
            upcoming = reader.submit(self._next_batch, context, instances[position:])
            while position < len(instances):
                batch = upcoming.result()
                position += len(batch)
                if position < len(instances):
                    # Read the next files from Orthanc while this batch travels.
                    upcoming = reader.submit(self._next_batch, context, instances[position:])
                answer = self._send_batch(context, remote, server, [data for _, data in batch])
                content["SentBytes"] += sum(len(data) for _, data in batch)
                content["NetworkSizeMB"] = str(content["SentBytes"] // MEGABYTE)
                content["Instances"] += [orthanc_id for orthanc_id, _ in batch]
                content["FailedInstances"] += _failed_sop_instances(answer)
                content["RemoteAnswers"].append(answer)
                context.report(len(content["Instances"]) / len(instances))

    def _next_batch(self, context: JobContext, remaining: list[str]) -> list[tuple[str, bytes]]:
        max_count = self.config.stow_max_instances
        max_size = self.config.stow_max_size * MEGABYTE
        batch: list[tuple[str, bytes]] = []
        size = 0
        for orthanc_id in remaining:
            if (max_count and len(batch) >= max_count) or (max_size and size >= max_size):
                break
            context.checkpoint()
            data = self.core.get(f"/instances/{orthanc_id}/file")
            batch.append((orthanc_id, data))
            size += len(data)
        return batch

    def _send_batch(
        self,
        context: JobContext,
        remote: RemoteServer,
        server: ServerDefinition,
        files: list[bytes],
    ) -> Any:
        boundary = new_boundary()

        def parts() -> Iterator[bytes]:
            for data in files:
                context.checkpoint()  # a cancel stops a chunked upload between two files
                yield encode_part(data, DICOM, boundary=boundary)
            yield f"--{boundary}--\r\n".encode("ascii")

        headers = {
            "Content-Type": related_content_type(DICOM, boundary),
            "Accept": DICOM_JSON,
        }
        data: Any = parts() if server.chunked_transfers else b"".join(parts())
        answer = remote.request("POST", "studies", headers=headers, data=data)
        try:
            return loads_json(answer.content, remote.name) if answer.content.strip() else {}
        except ValueError:
            return {"RemoteAnswer": answer.text[:500]}

    # --- WADO-RS retrieve ---------------------------------------------------------------

    def run_retrieve(self, context: JobContext) -> None:
        """Retrieve each URI and store every DICOM part into this Orthanc."""
        parameters = context.parameters
        uris: list[str] = parameters["Uris"]
        content = context.content
        content.setdefault("Server", parameters["Server"])
        content.setdefault("Resources", parameters["Resources"])
        content.setdefault("Instances", [])
        content.setdefault("RetrievedUris", 0)
        content.setdefault("NetworkUsageMB", "0")
        content.setdefault("ReceivedBytes", 0)
        content.setdefault("ReceivedInstancesCount", "0")
        server = self.servers.find(parameters["Server"])
        headers = {"Accept": self._retrieve_accept(server), **parameters["HttpHeaders"]}
        with RemoteServer(self.config, server, headers) as remote:
            if "InstancesCount" not in content:
                count = _count_instances(remote, uris)
                if count is not None:
                    content["InstancesCount"] = str(count)
            for index in range(content["RetrievedUris"], len(uris)):
                answer = remote.request(
                    "GET", uris[index], params=parameters["Arguments"], stream=True
                )
                self._store_parts(context, remote, uris[index], answer)
                content["RetrievedUris"] = index + 1
                context.report(_retrieve_progress(content, len(uris)))

    @staticmethod
    def _retrieve_accept(server: ServerDefinition) -> str:
        accept = f'multipart/related; type="{DICOM}"'
        if server.has_wado_rs_universal_transfer_syntax:
            accept += "; transfer-syntax=*"
        return accept

    def _store_parts(
        self, context: JobContext, remote: RemoteServer, uri: str, answer: requests.Response
    ) -> None:
        """Store each part as soon as it has arrived; parts before a fault stay stored."""
        where = f"DICOMweb server {remote.name} (GET {remote.shown(remote.url(uri))})"
        content = context.content
        instances: list[str] = content["Instances"]
        content_type = answer.headers.get("Content-Type", "")

        def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
            for chunk in chunks:
                content["ReceivedBytes"] += len(chunk)
                content["NetworkUsageMB"] = str(content["ReceivedBytes"] // MEGABYTE)
                yield chunk

        try:
            if parse_media_type(content_type).essence != "multipart/related":
                raise bad_request(f"Content-Type is {content_type!r}")
            boundary = boundary_of(content_type)
            chunks = counted(remote.chunks(answer, context.checkpoint))
            for payload in iter_streamed_parts(chunks, boundary):
                check_nesting(memoryview(payload))  # what would kill the core on storing
                stored = json.loads(self.core.post("/instances", payload))
                if stored["ID"] not in instances:  # a resumed job may get some twice
                    instances.append(stored["ID"])
                content["ReceivedInstancesCount"] = str(len(instances))
                context.report(_retrieve_progress(content, len(context.parameters["Uris"])))
        except CoreError as error:
            raise HttpError(502, f"{where}: Orthanc cannot store a part: {error.message}") from None
        except InvalidInstance as error:
            raise HttpError(502, f"{where}: a part cannot be stored: {error}") from None
        except HttpError as error:
            if error.status != 400:
                raise
            raise HttpError(
                502, f"{where}: not a valid multipart answer: {error.message}"
            ) from None
        finally:
            answer.close()


_COUNTABLE = re.compile(r"^studies/([^/]+)(?:/series/([^/]+)(?:/instances/([^/]+))?)?$")
_RELATED_INSTANCES = {"studies": "00201208", "series": "00201209"}


def _count_instances(remote: RemoteServer, uris: list[str]) -> int | None:
    """How many instances the URIs hold, asked to the remote's QIDO-RS so that progress
    follows the instances; None when a URI is not a plain study / series / instance or the
    remote does not tell (progress then goes URI by URI)."""
    total = 0
    for uri in uris:
        match = _COUNTABLE.match(uri)
        if match is None:
            return None
        study, series, instance = match.groups()
        if instance is not None:
            total += 1
            continue
        level = "series" if series else "studies"
        search = f"studies/{study}/series" if series else "studies"
        key = {"SeriesInstanceUID": series} if series else {"StudyInstanceUID": study}
        try:
            answer = remote.request("GET", search, headers={"Accept": DICOM_JSON}, params=key)
            found = loads_json(answer.content, remote.name, status=502)
            total += int(found[0][_RELATED_INSTANCES[level]]["Value"][0])
        except (HttpError, ValueError, LookupError, TypeError) as error:
            log.info("No instance count from %s for %s: %s", remote.name, uri, error)
            return None
    return total


def _retrieve_progress(content: Mapping[str, Any], uri_count: int) -> float:
    """Instances stored out of those expected (below 1 until the job ends: a remote may count
    fewer than it sends), else URIs done."""
    expected = int(content.get("InstancesCount") or 0)
    if expected:
        return min(len(content["Instances"]) / expected, 0.99)
    return content["RetrievedUris"] / uri_count


def _failed_sop_instances(answer: Any) -> list[str]:
    """SOP Instance UIDs the remote refused, from its STOW-RS answer (DICOM JSON)."""
    if not isinstance(answer, dict):
        return []
    failed = answer.get(FAILED_SOP_SEQUENCE, {}).get("Value", [])
    uids = (item.get(REFERENCED_SOP_INSTANCE_UID, {}).get("Value", [None])[0] for item in failed)
    return [uid for uid in uids if isinstance(uid, str)]


def _details_of(job: Job) -> Any:
    try:
        return json.loads(job.error_details) if job.error_details else None
    except ValueError:
        return job.error_details
