"""HTTP to one remote DICOMweb server: its options, its redirects, and clear errors.

`RemoteServer` applies a server's options (authentication, headers, proxy, timeouts, TLS,
client certificate) and turns every network fault and every answer that is not a success into
an `HttpError` naming the server and the cause, never its credentials. Redirects are not left
to `requests`: it would follow them to any host with the server's headers (an `X-Api-Key`),
re-post a STOW-RS body on 307/308, and turn it into a GET reported as a success on 301-303.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..config import Configuration, ServerDefinition, redact_url
from ..errors import HttpError, bad_request

READ_CHUNK = 1024 * 1024
MAX_REDIRECTS = 5
QUERY_SAFE = "*?,:@/!$'()"
"""Characters sent unencoded in query strings (see `query_string`)."""
PASSED_ON = frozenset({400, 401, 402, 403, 404, 406, 407, 408, 409, 410, 411, 412, 413, 414})
PASSED_ON |= {415, 416, 417, 422, 423, 424, 426}
"""The remote's 4xx statuses answered as they are: those Orthanc 1.10's `SendHttpStatus`
accepts. Any other (405, 418, 429, 431, 451, 499...) makes the core fail with "Parameter out
of range" and drop the connection: such answers become 502, the remote's status in the JSON."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


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

    def shown(self, text: str) -> str:
        """`text` without the credentials of the server's URL (`user:password@`)."""
        userinfo = urlsplit(self.server.url).netloc.rpartition("@")[0]
        for secret in {userinfo, unquote(userinfo)} - {""}:
            text = text.replace(secret + "@", "***@")
        return text

    def request(
        self,
        method: str,
        uri: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
        follow_redirects: bool = False,
    ) -> requests.Response:
        """One call; network faults and answers other than 2xx become HttpError. With
        `follow_redirects`, a GET follows redirects within the server's origin."""
        url, query = self.url(uri), query_string(params or {})
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, query, headers, data, stream)
            if not response.is_redirect:
                if not 200 <= response.status_code < 300:
                    raise self.remote_error(response, method, url)
                return response
            url, query = self._redirect_target(response, method, url, follow_redirects), ""
        raise HttpError(
            502,
            f"DICOMweb server {self.name}: more than {MAX_REDIRECTS} redirects from {method} "
            f"{self.shown(self.url(uri))}",
        )

    def _send(
        self,
        method: str,
        url: str,
        query: str,
        headers: Mapping[str, str] | None,
        data: Any,
        stream: bool,
    ) -> requests.Response:
        try:
            return self.session.request(
                method,
                url,
                headers=dict(headers or {}),
                params=query,
                data=data,
                stream=stream,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except (requests.RequestException, ValueError) as error:
            raise self.network_error(error, method, url) from None

    def _redirect_target(
        self, response: requests.Response, method: str, url: str, follow: bool
    ) -> str:
        """Where a redirect leads, when it may be followed: only a GET that asked for it,
        within the same origin (so no header, credential or body goes elsewhere)."""
        target = urljoin(url, response.headers["Location"])
        response.close()
        where = (
            f"DICOMweb server {self.name} redirected {method} {self.shown(url)} "
            f"(HTTP {response.status_code}) to {redact_url(target)}"
        )
        details = {"RemoteStatus": response.status_code, "Location": redact_url(target)}
        if not follow or method != "GET":
            raise HttpError(502, f"{where}: not followed; is the server's URL right?", details)
        if origin(target) != origin(url):
            raise HttpError(
                502, f"{where}: another origin, not followed (its credentials stay here)", details
            )
        return target

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
        where = f"DICOMweb server {self.name} ({method} {self.shown(url)})"
        text = self.shown(str(error))
        if isinstance(error, requests.exceptions.SSLError):
            return HttpError(502, f"{where}: TLS certificate verification failed", text)
        if isinstance(error, requests.Timeout):
            return HttpError(504, f"{where}: no answer within {self.timeout} s", text)
        if isinstance(error, requests.exceptions.ChunkedEncodingError):
            return HttpError(502, f"{where}: connection closed mid-transfer", text)
        if isinstance(error, requests.ConnectionError):
            return HttpError(502, f"{where}: server unreachable or connection lost", text)
        if isinstance(error, requests.exceptions.InvalidHeader | ValueError):
            return bad_request(f"{where}: invalid request", text)
        return HttpError(502, f"{where}: {type(error).__name__}", text)

    def remote_error(self, response: requests.Response, method: str, url: str) -> HttpError:
        """A remote 4xx the core can answer stays that 4xx (our caller asked something
        wrong); every other status (5xx, 405, 429, a 3xx that is no redirect...) is a 502."""
        status = response.status_code
        try:
            text = response.text[:2000]
        except requests.RequestException:
            text = ""
        finally:
            response.close()
        return HttpError(
            status if status in PASSED_ON else 502,
            f"DICOMweb server {self.name} answered HTTP {status} to {method} {self.shown(url)}",
            {"RemoteStatus": status, "RemoteAnswer": self.shown(text)},
        )


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port (RFC 6454), the default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def query_string(arguments: Mapping[str, str]) -> str:
    """QIDO-RS keys and values percent-encoded, except the characters a query may hold as they
    are (RFC 3986 3.4): `*`, `?` (wildcards) and `,` (lists) mean the same either way to a
    server that decodes, and the official plugin 1.7 does not decode (`%2ASMITH%2A` finds
    nothing there). `+`, `&`, `=`, `#` and spaces stay encoded."""
    return "&".join(
        f"{quote(key, safe=QUERY_SAFE)}={quote(value, safe=QUERY_SAFE)}"
        for key, value in arguments.items()
    )
