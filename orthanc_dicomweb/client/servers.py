"""The remote DICOMweb servers (`DicomWeb.Servers`) and the REST API managing them.

With `ServersInDatabase`, the definitions live in a global property of the Orthanc database
(read at every request, so several Orthancs sharing the database agree); the configuration's
servers are the initial content. Without it, changes made through the REST API last until
Orthanc stops, as with the official plugin.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ..config import Configuration, ConfigurationError, ServerDefinition, parse_server
from ..errors import HttpError, bad_request, not_found
from ..http.bounded import loads_json
from ..http.web import Request, Response, json_response
from ..orthanc.core import Core, GlobalProperties
from ..orthanc.shared_state import SharedLock
from ..orthanc.storage_ids import OFFICIAL_SERVERS_PROPERTY, SERVERS_PROPERTY

log = logging.getLogger(__name__)

OPERATIONS = ("get", "retrieve", "stow", "wado", "qido")


class ServerRegistry:
    """Finds, lists, adds and removes remote server definitions."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.properties = core if isinstance(core, GlobalProperties) else None
        if config.servers_in_database and self.properties is None:
            log.error("ServersInDatabase is on but this runtime offers no global properties")
        self._memory = {server.name: server for server in config.servers}
        # Changes read, change and write the whole list: one at a time, on every node of a
        # shared database too (reentrant: put() and remove() call all()).
        shared = core if config.servers_in_database else None
        self._lock = SharedLock(shared, "dicomweb-servers")
        self._adoption_checked = False

    @property
    def _in_database(self) -> bool:
        return self.config.servers_in_database and self.properties is not None

    def all(self) -> dict[str, ServerDefinition]:
        if not self._in_database:
            with self._lock:
                return dict(self._memory)
        assert self.properties is not None
        text = self.properties.get_global_property(SERVERS_PROPERTY) or self._adopt()
        if not text:
            return {server.name: server for server in self.config.servers}
        return _parse_saved(json.loads(text))

    def _adopt(self) -> str:
        """The official plugin's saved servers, copied into ours ("" when there are none)."""
        with self._lock:
            if self._adoption_checked:
                return ""
            self._adoption_checked = True  # our property stays empty only until a first write
            assert self.properties is not None
            text = self.properties.get_global_property(OFFICIAL_SERVERS_PROPERTY)
            try:
                saved = json.loads(text) if text else None
            except ValueError:
                saved = None
            if not isinstance(saved, dict):
                return ""
            servers = _parse_saved(saved)
            log.warning(
                "DICOMweb servers adopted from the official plugin's saved ones: %s",
                ", ".join(sorted(servers)) or "none",
            )
            self._write(servers)
            return self.properties.get_global_property(SERVERS_PROPERTY)

    def find(self, name: str) -> ServerDefinition:
        server = self.all().get(name)
        if server is None:
            raise not_found(f"Unknown DICOMweb server: {name}")
        return server

    def put(self, server: ServerDefinition) -> None:
        with self._lock:
            servers = self.all()
            servers[server.name] = server
            self._write(servers)

    def update(self, name: str, changes: Mapping[str, Any]) -> ServerDefinition:
        """Merges `changes` (object form) into a server: absent fields are kept, passwords
        included, `null` removes a field, `"Name"` renames it (409 if the name is taken)."""
        new_name = changes.get("Name", name)
        if not isinstance(new_name, str) or not new_name.strip():
            raise bad_request('"Name" must be a non-empty string')
        with self._lock:
            servers = self.all()
            current = servers.get(name)
            if current is None:
                raise not_found(f"Unknown DICOMweb server: {name}")
            if new_name != name and new_name in servers:
                raise HttpError(409, f"A DICOMweb server is already named {new_name}")
            merged = {**current.to_json(with_password=True), **changes}
            merged.pop("Name", None)
            try:
                server = parse_server(new_name, {k: v for k, v in merged.items() if v is not None})
            except ConfigurationError as error:
                raise bad_request(str(error)) from None
            del servers[name]
            servers[new_name] = server
            self._write(servers)
            return server

    def remove(self, name: str) -> None:
        with self._lock:
            servers = self.all()
            if servers.pop(name, None) is None:
                raise not_found(f"Unknown DICOMweb server: {name}")
            self._write(servers)

    def _write(self, servers: dict[str, ServerDefinition]) -> None:
        if not self._in_database:
            self._memory = servers
            return
        assert self.properties is not None
        saved = {name: server.to_json(with_password=True) for name, server in servers.items()}
        self.properties.set_global_property(SERVERS_PROPERTY, json.dumps(saved))


def _parse_saved(saved: Mapping[str, Any]) -> dict[str, ServerDefinition]:
    servers = {}
    for name, value in saved.items():
        try:
            servers[name] = parse_server(name, value, "saved DICOMweb servers")
        except ConfigurationError as error:  # one bad entry must not hide the others
            log.error("%s", error)
    return servers


def operations_of(server: ServerDefinition) -> list[str]:
    """What `{root}servers/{name}/...` offers for this server."""
    return [*OPERATIONS, "delete"] if server.has_delete else list(OPERATIONS)


def server_from_body(name: str, body: bytes) -> ServerDefinition:
    """A server definition sent to `PUT {root}servers/{name}`; 400 when it is wrong."""
    if not name.strip():
        raise bad_request("A DICOMweb server needs a name")
    try:
        value = loads_json(body or b"null", "The body")
    except ValueError as error:
        raise bad_request("The body must be JSON: a server definition", str(error)) from None
    if not isinstance(value, list | dict):
        raise bad_request("A server definition is a JSON object or [url, username, password]")
    try:
        return parse_server(name, value, "server")
    except ConfigurationError as error:
        raise bad_request(str(error)) from None


class ServersService:
    """REST API of the servers: `{root}servers` and `{root}servers/{name}`."""

    def __init__(self, config: Configuration, registry: ServerRegistry) -> None:
        self.config = config
        self.registry = registry

    def list_servers(self, request: Request) -> Response:
        """Names, or with `?expand` the definitions (never the passwords)."""
        servers = self.registry.all()
        if "expand" in request.query:
            return json_response({name: servers[name].to_json() for name in sorted(servers)})
        return json_response(sorted(servers))

    def get_server(self, request: Request) -> Response:
        return json_response(operations_of(self.registry.find(request.groups[0])))

    def put_server(self, request: Request) -> Response:
        self._refuse_when_read_only()
        self.registry.put(server_from_body(request.groups[0], request.body))
        return json_response({})

    def update_server(self, request: Request) -> Response:
        """`POST {root}servers/{name}`: change some fields, rename; answers the new definition."""
        self._refuse_when_read_only()
        try:
            changes = loads_json(request.body or b"null", "The body")
        except ValueError as error:
            raise bad_request("The body must be a JSON object of changes", str(error)) from None
        if not isinstance(changes, dict):
            raise bad_request("The body must be a JSON object of changes")
        server = self.registry.update(request.groups[0], changes)
        return json_response({"Name": server.name, **server.to_json()})

    def delete_server(self, request: Request) -> Response:
        self._refuse_when_read_only()
        self.registry.remove(request.groups[0])
        return json_response({})

    def _refuse_when_read_only(self) -> None:
        if self.config.read_only:
            raise HttpError(403, "Orthanc is read-only: DICOMweb servers cannot be changed")
