"""The DICOMweb client: HTTP to remote servers, proxied calls, and push / retrieve jobs.

`RemoteServer` talks to one remote server with its options (authentication, headers, proxy,
timeouts, TLS, client certificate) and turns every network fault into an `HttpError` naming the
server and the cause. `DicomWebClient` serves `{root}servers/{name}/get|qido|delete|stow|
retrieve|wado`; STOW-RS pushes and WADO-RS retrieves run as jobs of the plugin's engine.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from .bounded import loads_json
from .config import Configuration, ServerDefinition
from .core import Core, CoreError, get_if_exists, get_json
from .dicom_assembly import InvalidInstance, check_nesting
from .errors import HttpError, bad_request
from .jobs import Job, JobContext, JobEngine, JobState
from .multipart import boundary_of, encode_part, iter_streamed_parts, new_boundary
from .multipart import multipart_content_type as related_content_type
from .negotiation import parse_media_type
from .resources import is_orthanc_id, validate_uid
from .servers import ServerRegistry
from .web import Request, Response, json_response

log = logging.getLogger(__name__)

STOW_JOB = "DicomWebStowClient"
RETRIEVE_JOB = "DicomWebWadoRetrieveClient"
MEGABYTE = 1024 * 1024
READ_CHUNK = MEGABYTE
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"
_LEVELS = {"Study": "studies", "Series": "series", "Instance": "instances"}

QUERY_SAFE = "*?,:@/!$'()"
"""Characters sent unencoded in query strings (see `query_string`)."""

# --- one remote server -------------------------------------------------------------------


class _ClientCertificateAdapter(HTTPAdapter):
    """Uses an SSL context holding a client certificate (its key may have a password)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(*args, **kwargs)


class RemoteServer:
    """HTTP calls to one remote DICOMweb server, with its options and clear errors."""

    def __init__(
        self,
        config: Configuration,
        server: ServerDefinition,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if server.pkcs11:
            raise HttpError(
                501,
                f"DICOMweb server {server.name}: Pkcs11 client authentication is not "
                "available in the Python plugin (the SDK gives no access to Orthanc's PKCS#11)",
            )
        self.server = server
        self.name = server.name
        timeout = server.timeout or config.http_timeout
        self.timeout = timeout or None  # 0 means no timeout, as in Orthanc
        self.session = requests.Session()
        self.session.headers.update({**server.http_headers, **(headers or {})})
        if server.username:
            self.session.auth = (server.username, server.password or "")
        if config.http_proxy:
            self.session.proxies = {"http": config.http_proxy, "https": config.http_proxy}
        self.session.trust_env = False  # HttpProxy, not the environment, decides
        verify: bool | str = config.https_verify_peers
        if config.https_verify_peers and config.https_ca_certificates:
            verify = config.https_ca_certificates
        self.session.verify = verify
        if server.certificate_file:
            self.session.mount("https://", _ClientCertificateAdapter(self._tls_context(verify)))

    def _tls_context(self, verify: bool | str) -> ssl.SSLContext:
        server = self.server
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        if verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            context.load_cert_chain(
                server.certificate_file or "",
                server.certificate_key_file,
                server.certificate_key_password,
            )
        except (OSError, ssl.SSLError) as error:
            raise bad_request(
                f"DICOMweb server {self.name}: cannot load the client certificate "
                f"{server.certificate_file}: {error}"
            ) from None
        return context

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RemoteServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, uri: str) -> str:
        return self.server.url + uri

    def request(
        self,
        method: str,
        uri: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
    ) -> requests.Response:
        """One call; network faults and HTTP errors of the remote become HttpError."""
        url = self.url(uri)
        try:
            response = self.session.request(
                method,
                url,
                headers=dict(headers or {}),
                params=query_string(params or {}),
                data=data,
                stream=stream,
                timeout=self.timeout,
            )
        except (requests.RequestException, ValueError) as error:
            raise self.network_error(error, method, url) from None
        if response.status_code >= 400:
            raise self.remote_error(response, method, url)
        return response

    def chunks(
        self, response: requests.Response, checkpoint: Callable[[], None]
    ) -> Iterator[bytes]:
        """The body of a streamed answer as it arrives; stops early when the job is interrupted."""
        try:
            for chunk in response.iter_content(READ_CHUNK):
                yield chunk
                checkpoint()
        except requests.RequestException as error:
            method = response.request.method or "GET"
            raise self.network_error(error, method, response.url) from None
        finally:
            response.close()

    def network_error(self, error: Exception, method: str, url: str) -> HttpError:
        where = f"DICOMweb server {self.name} ({method} {url})"
        if isinstance(error, requests.exceptions.SSLError):
            return HttpError(502, f"{where}: TLS certificate verification failed", str(error))
        if isinstance(error, requests.Timeout):
            return HttpError(504, f"{where}: no answer within {self.timeout} s", str(error))
        if isinstance(error, requests.exceptions.ChunkedEncodingError):
            return HttpError(502, f"{where}: connection closed mid-transfer", str(error))
        if isinstance(error, requests.ConnectionError):
            return HttpError(502, f"{where}: server unreachable or connection lost", str(error))
        if isinstance(error, requests.exceptions.InvalidHeader | ValueError):
            return bad_request(f"{where}: invalid request", str(error))
        return HttpError(502, f"{where}: {type(error).__name__}", str(error))

    def remote_error(self, response: requests.Response, method: str, url: str) -> HttpError:
        """The remote's 4xx stays a 4xx (our caller asked something wrong); 5xx is a 502.

        A remote 405 also becomes a 502: Orthanc sends 405 answers without a body.
        """
        status = response.status_code
        try:
            text = response.text[:2000]
        except requests.RequestException:
            text = ""
        finally:
            response.close()
        return HttpError(
            status if status < 500 and status != 405 else 502,
            f"DICOMweb server {self.name} answered HTTP {status} to {method} {url}",
            {"RemoteStatus": status, "RemoteAnswer": text},
        )


# --- request bodies ----------------------------------------------------------------------
def query_string(arguments: Mapping[str, str]) -> str:
    """QIDO-RS keys and values percent-encoded, except the characters a query may hold as they
    are (RFC 3986 3.4): `*`, `?` (wildcards) and `,` (lists) mean the same either way to a
    server that decodes, and the official plugin 1.7 does not decode (`%2ASMITH%2A` finds
    nothing there). `+`, `&`, `=`, `#` and spaces stay encoded."""
    return "&".join(
        f"{quote(key, safe=QUERY_SAFE)}={quote(value, safe=QUERY_SAFE)}"
        for key, value in arguments.items()
    )




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
    """A path below the server's URL (`/studies`, `studies/1.2/series`); 400 otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request('"Uri" must be a non-empty string')
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        raise bad_request(f'"Uri" must be a path below the server URL, not {value!r}')
    if any(ord(c) < 33 or c in '\\"<>' for c in value) or ".." in value.split("/"):
        raise bad_request(f'"Uri" contains forbidden characters or "..": {value!r}')
    return value.lstrip("/")


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
        self, config: Configuration, core: Core, servers: ServerRegistry, engine: JobEngine
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
            answer = remote.request("GET", uri, params=_string_map(body, "Arguments"))
            content_type = answer.headers.get("Content-Type", "application/octet-stream")
            return Response(answer.content, content_type)

    def qido(self, request: Request) -> Response:
        """QIDO-RS `Uri` with `Arguments`; the remote's DICOM JSON, checked."""
        body = _json_object(request.body)
        uri = relative_uri(body.get("Uri"))
        headers = {"Accept": DICOM_JSON, **_string_map(body, "HttpHeaders")}
        with self._remote(request.groups[0], headers) as remote:
            answer = remote.request("GET", uri, params=_string_map(body, "Arguments"))
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
        resources = [self._orthanc_id(value) for value in _resources(body)]
        instances = [i for resource in resources for i in self._instances_of(resource)]
        parameters = {
            "Server": name,
            "Resources": resources,
            "Instances": list(dict.fromkeys(instances)),
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

    def _instances_of(self, orthanc_id: str) -> list[str]:
        """The instances of a patient, study, series or instance (by Orthanc id)."""
        if get_if_exists(self.core, f"/instances/{orthanc_id}") is not None:
            return [orthanc_id]
        for level in ("series", "studies", "patients"):
            # The core answers [] for /series/{study id}/instances: check the level first.
            if get_if_exists(self.core, f"/{level}/{orthanc_id}") is not None:
                return [i["ID"] for i in get_json(self.core, f"/{level}/{orthanc_id}/instances")]
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
            for index in range(content["RetrievedUris"], len(uris)):
            if "InstancesCount" not in content:
                count = _count_instances(remote, uris)
                if count is not None:
                    content["InstancesCount"] = str(count)
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
        where = f"DICOMweb server {remote.name} (GET {remote.url(uri)})"
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
        except CoreError as error:
                context.report(_retrieve_progress(content, len(context.parameters["Uris"])))
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


def _failed_sop_instances(answer: Any) -> list[str]:
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
            total += int(answer.json()[0][_RELATED_INSTANCES[level]]["Value"][0])
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
