"""STOW-RS push (`{root}servers/{name}/stow`): Orthanc resources sent to a remote, as a job.

The job's parameters name every instance at submission; the runner reads them from Orthanc
and sends them in requests bounded by `StowMaxInstances` and `StowMaxSize`, reading the next
batch while one travels. A resumed job goes on after the instances its content says were sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..config import Configuration, ServerDefinition
from ..dicom.transfer_syntax import DICOM
from ..errors import HttpError, bad_request
from ..http.bounded import loads_json
from ..http.multipart import encode_part, new_boundary
from ..http.multipart import multipart_content_type as related_content_type
from ..http.negotiation import DICOM_JSON
from ..jobs.engine import JobContext
from ..orthanc.core import Core, get_if_exists, get_json
from ..orthanc.resources import is_orthanc_id
from .bodies import resources, string_map
from .remote import RemoteServer
from .servers import ServerRegistry

STOW_JOB = "DicomWebStowClient"
MEGABYTE = 1024 * 1024
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"


class Push:
    """The STOW-RS push job: its parameters from a request's body, and its runner."""

    def __init__(self, config: Configuration, core: Core, servers: ServerRegistry) -> None:
        self.config = config
        self.core = core
        self.servers = servers

    def parameters(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The job's parameters: the resources given (Orthanc ids, any level), by level, and
        every instance they hold."""
        by_level: dict[str, list[str]] = {}
        instances: list[str] = []
        for value in resources(body):
            level, found = self._instances_of(_orthanc_id(value))
            if level != "Instances":
                by_level.setdefault(level, []).append(value)
            instances += found
        instances = list(dict.fromkeys(instances))
        return {
            "Server": name,
            # The official plugin's form: the resources given, by level, and every instance.
            "Resources": {**by_level, "Instances": instances},
            "Instances": instances,
            "HttpHeaders": string_map(body, "HttpHeaders"),
        }

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

    def run(self, context: JobContext) -> None:
        """Send the instances in requests bounded by StowMaxInstances and StowMaxSize."""
        parameters = context.parameters
        instances: list[str] = parameters["Instances"]
        content = context.started_content(
            {
                "Server": parameters["Server"],
                "Resources": parameters["Resources"],
                "InstancesCount": str(len(instances)),
                "Instances": [],
                "FailedInstances": [],
                "RemoteAnswers": [],
                "NetworkSizeMB": "0",
                "SentBytes": 0,
            }
        )
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


def _orthanc_id(value: Any) -> str:
    if not is_orthanc_id(value):
        raise bad_request(f"Not an Orthanc identifier: {value!r}")
    return value


def _failed_sop_instances(answer: Any) -> list[str]:
    """SOP Instance UIDs the remote refused, from its STOW-RS answer (DICOM JSON)."""
    if not isinstance(answer, dict):
        return []
    failed = answer.get(FAILED_SOP_SEQUENCE, {}).get("Value", [])
    uids = (item.get(REFERENCED_SOP_INSTANCE_UID, {}).get("Value", [None])[0] for item in failed)
    return [uid for uid in uids if isinstance(uid, str)]
