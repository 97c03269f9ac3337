"""WADO-RS retrieve (`{root}servers/{name}/retrieve` and `/wado`): what a remote sends, stored
into this Orthanc, as a job.

Each URI's multipart answer is read as it arrives and every DICOM part is stored as soon as it
is complete, so a series costs one part in memory. Progress follows the instances when the
remote's QIDO-RS counts them, else the URIs; a resumed job goes on after the URIs done.
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

import requests

from ..config import Configuration, ServerDefinition
from ..dicom.assembly import InvalidInstance, check_nesting
from ..dicom.transfer_syntax import DICOM
from ..errors import HttpError, bad_request
from ..http.bounded import loads_json
from ..http.multipart import boundary_of, iter_streamed_parts
from ..http.negotiation import DICOM_JSON, MULTIPART_RELATED, parse_media_type
from ..jobs.engine import JobContext
from ..orthanc.core import ConcurrentStores, Core, CoreError
from .bodies import string_map
from .remote import RemoteServer
from .servers import ServerRegistry

log = logging.getLogger(__name__)

RETRIEVE_JOB = "DicomWebWadoRetrieveClient"
MEGABYTE = 1024 * 1024
_COUNTABLE = re.compile(r"^studies/([^/]+)(?:/series/([^/]+)(?:/instances/([^/]+))?)?$")
_RELATED_INSTANCES = {"studies": "00201208", "series": "00201209"}


class Fetch:
    """The WADO-RS retrieve job: its parameters, and its runner."""

    def __init__(self, config: Configuration, core: Core, servers: ServerRegistry) -> None:
        self.config = config
        self.core = core
        self.servers = servers

    def parameters(
        self, name: str, uris: list[str], resources: list[Any], body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The job's parameters: the URIs to retrieve from the server, and what was asked."""
        self.servers.find(name)
        if self.config.read_only:
            raise HttpError(403, "Orthanc is read-only: nothing can be retrieved into it")
        return {
            "Server": name,
            "Resources": resources,
            "Uris": uris,
            "HttpHeaders": string_map(body, "HttpHeaders"),
            "Arguments": string_map(body, "Arguments"),
        }

    def run(self, context: JobContext) -> None:
        """Retrieve each URI and store every DICOM part into this Orthanc."""
        parameters = context.parameters
        uris: list[str] = parameters["Uris"]
        content = context.started_content(
            {
                "Server": parameters["Server"],
                "Resources": parameters["Resources"],
                "Instances": [],
                "RetrievedUris": 0,
                "NetworkUsageMB": "0",
                "ReceivedBytes": 0,
                "ReceivedInstancesCount": "0",
            }
        )
        server = self.servers.find(parameters["Server"])
        headers = {"Accept": _accept(server), **parameters["HttpHeaders"]}
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
                context.report(_progress(content, len(uris)))

    def _store_parts(
        self, context: JobContext, remote: RemoteServer, uri: str, answer: requests.Response
    ) -> None:
        """Store each part as soon as it has arrived; parts before a fault stay stored."""
        where = f"DICOMweb server {remote.name} (GET {remote.shown(remote.url(uri))})"
        content = context.content
        content_type = answer.headers.get("Content-Type", "")

        def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
            for chunk in chunks:
                content["ReceivedBytes"] += len(chunk)
                content["NetworkUsageMB"] = str(content["ReceivedBytes"] // MEGABYTE)
                yield chunk

        try:
            if parse_media_type(content_type).essence != MULTIPART_RELATED:
                raise bad_request(f"Content-Type is {content_type!r}")
            boundary = boundary_of(content_type)
            chunks = counted(remote.chunks(answer, context.checkpoint))
            self._store_all(context, iter_streamed_parts(chunks, boundary))
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

    def _store_all(self, context: JobContext, parts: Iterator[bytes]) -> None:
        """Store the parts as STOW-RS does: through the core's plugin-aware route, so other
        plugins' filters apply, over the loopback when the runtime has one (it releases the GIL
        while the core stores), up to `concurrent_stores` at once while the next parts arrive.
        Measured on the 300-slice CT from an official plugin (2 cores): 0.90 s against 1.46 s
        one at a time through the SDK (the official plugin: 1.51 s), searches meanwhile 6 ms
        against 8.5 ms (official: 4.3 ms)."""
        width = self.core.concurrent_stores() if isinstance(self.core, ConcurrentStores) else 1
        store = partial(self.core.post, "/instances", after_plugins=True)
        uri_count = len(context.parameters["Uris"])

        def record(answer: bytes) -> None:
            _add_stored(context.content, answer)
            context.report(_progress(context.content, uri_count))

        stores: deque[Future[bytes]] = deque()
        with ThreadPoolExecutor(width, thread_name_prefix="dicomweb-retrieve-store") as pool:
            try:
                for payload in parts:
                    check_nesting(memoryview(payload))  # what would kill the core on storing
                    stores.append(pool.submit(store, payload))
                    if len(stores) >= width:  # in the parts' order: the content lists them so
                        record(stores.popleft().result())
                while stores:
                    record(stores.popleft().result())
            finally:  # after a fault or an interruption, what was stored meanwhile is listed too
                for future in stores:
                    if future.exception() is None:
                        _add_stored(context.content, future.result())


def _add_stored(content: dict[str, Any], answer: bytes) -> None:
    """Add a stored instance to the job's content (once: a resumed job may get some twice)."""
    instances: list[str] = content["Instances"]
    stored = json.loads(answer)
    if stored["ID"] not in instances:
        instances.append(stored["ID"])
    content["ReceivedInstancesCount"] = str(len(instances))


def _accept(server: ServerDefinition) -> str:
    accept = f'{MULTIPART_RELATED}; type="{DICOM}"'
    if server.has_wado_rs_universal_transfer_syntax:
        accept += "; transfer-syntax=*"
    return accept


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


def _progress(content: Mapping[str, Any], uri_count: int) -> float:
    """Instances stored out of those expected (below 1 until the job ends: a remote may count
    fewer than it sends), else URIs done."""
    expected = int(content.get("InstancesCount") or 0)
    if expected:
        return min(len(content["Instances"]) / expected, 0.99)
    return content["RetrievedUris"] / uri_count
