"""Calls proxied to a remote server: `{root}servers/{name}/get`, `/qido` and `/delete`.

The remote's answer comes back to the caller (its errors through `remote.RemoteServer`, which
names the server and never its credentials).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config import Configuration
from ..errors import HttpError, bad_request
from ..http.bounded import loads_json
from ..http.negotiation import DICOM_JSON
from ..http.web import Request, Response, json_response
from .bodies import delete_uri, json_object, relative_uri, string_map
from .remote import RemoteServer
from .servers import ServerRegistry


class ProxiedCalls:
    """GET, QIDO-RS and DELETE on a remote server, answered as the remote answered."""

    def __init__(self, config: Configuration, servers: ServerRegistry) -> None:
        self.config = config
        self.servers = servers

    def _remote(self, name: str, headers: Mapping[str, str] | None = None) -> RemoteServer:
        return RemoteServer(self.config, self.servers.find(name), headers)

    def get(self, request: Request) -> Response:
        """GET `Uri` on the remote; its status, content type and body come back."""
        body = json_object(request.body)
        uri = relative_uri(body.get("Uri"))
        with self._remote(request.groups[0], string_map(body, "HttpHeaders")) as remote:
            arguments = string_map(body, "Arguments")
            answer = remote.request("GET", uri, params=arguments, follow_redirects=True)
            content_type = answer.headers.get("Content-Type", "application/octet-stream")
            return Response(answer.content, content_type)

    def qido(self, request: Request) -> Response:
        """QIDO-RS `Uri` with `Arguments`; the remote's DICOM JSON, checked."""
        body = json_object(request.body)
        uri = relative_uri(body.get("Uri"))
        headers = {"Accept": DICOM_JSON, **string_map(body, "HttpHeaders")}
        with self._remote(request.groups[0], headers) as remote:
            arguments = string_map(body, "Arguments")
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
        """DELETE on the remote, for servers that allow it (`HasDelete`)."""
        name = request.groups[0]
        server = self.servers.find(name)
        if not server.has_delete:
            raise bad_request(f'DICOMweb server {name} does not allow DELETE (see "HasDelete")')
        body = json_object(request.body)
        uri = delete_uri(body)
        with self._remote(name, string_map(body, "HttpHeaders")) as remote:
            remote.request("DELETE", uri)
        return json_response({})
