"""An HTTP client of Orthanc's own REST API, for calls that move many bytes.

Plugin 4.0 holds the GIL during every SDK call, so two stores made through the SDK never
overlap, while the core (a multi-threaded C++ server) could run them side by side. The same
call sent over HTTP to the core's own port releases the GIL while it waits on the socket.
Errors are mapped to `core.CoreError` from the core's JSON error body, with the same code the
SDK would give, so callers cannot tell the two paths apart.

When the core's HTTP server cannot be reached, or does not answer in time (every HTTP thread
held by slow uploads, say), the loopback rests: callers store through the SDK meanwhile and
the loopback is tried again after `RETRY_AFTER` seconds. One slow moment must not make every
later STOW-RS store one instance at a time.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .core import CoreError

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
# HTTP threads kept free for other clients while nested calls hold theirs: a request that waits
# on nested calls which wait for a free HTTP thread would deadlock.
THREADS_HEADROOM = 4
DEFAULT_TIMEOUT = 60.0
RETRY_AFTER = 30.0
# A kept-alive connection that the server closed meanwhile (Orthanc's KeepAliveTimeout is 1 s
# by default) fails on first use with one of these: the request never reached the core.
_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class LoopbackUnavailable(Exception):
    """The core's HTTP server could not be reached, or refused the call before the core ran it."""


def unusable_reason(configuration: Mapping[str, Any], nested_calls: int) -> str | None:
    """Why `nested_calls` loopback calls at once are not safe with this Orthanc configuration
    (None when they are)."""
    if not configuration.get("HttpServerEnabled", True):
        return "the HTTP server is disabled"
    threads = configuration.get("HttpThreadsCount", 50)
    if not isinstance(threads, int) or threads < nested_calls + THREADS_HEADROOM:
        return f"HttpThreadsCount {threads} is below {nested_calls + THREADS_HEADROOM}"
    if configuration.get("SslEnabled", False) and configuration.get("SslVerifyPeers", False):
        return "the HTTP server asks for client certificates (SslVerifyPeers)"
    if not configuration.get("HttpDescribeErrors", True):
        return "HttpDescribeErrors is off: errors would lose the core's error code"
    return None


class Loopback:
    """POSTs to the core's REST API over one kept-alive connection per thread."""

    def __init__(
        self,
        port: int,
        authorization: str,
        https: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        host: str = HOST,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.https = https
        self.timeout = timeout
        self.host = host
        self.retry_after = retry_after
        self._clock = clock
        self._resting_until = 0.0
        self._headers = {"Authorization": authorization} if authorization else {}
        self._local = threading.local()

    def available(self) -> bool:
        """False while resting after a failure (callers use the SDK meanwhile)."""
        return self._clock() >= self._resting_until

    def post(self, uri: str, body: bytes | memoryview) -> bytes:
        """The core's answer to `POST uri`; CoreError when the core refuses it, and
        LoopbackUnavailable (the loopback then rests) when it could not be asked."""
        try:
            status, answer = self._exchange("POST", uri, body)
            if status == 200:
                return answer
            raise self._error_of(status, answer, uri)
        except LoopbackUnavailable as error:
            self._rest(error)
            raise

    def _rest(self, error: LoopbackUnavailable) -> None:
        if self.available():  # logged once per failure, however many threads saw it
            log.warning(
                "STOW-RS stores through the SDK (one at a time) for %.0f s: %s",
                self.retry_after,
                error,
            )
        self._resting_until = self._clock() + self.retry_after

    def _exchange(self, method: str, uri: str, body: bytes | memoryview) -> tuple[int, bytes]:
        reused = getattr(self._local, "connection", None) is not None
        try:
            return self._send(method, uri, body)
        except _STALE_CONNECTION as error:
            self._close()
            if not reused:
                raise LoopbackUnavailable(f"{method} {uri}: {error!r}") from error
        except (OSError, http.client.HTTPException) as error:  # refused, timed out, TLS...
            self._close()
            raise LoopbackUnavailable(f"{method} {uri}: {error!r}") from error
        try:
            return self._send(method, uri, body)  # once more, on a fresh connection
        except (OSError, http.client.HTTPException) as error:
            self._close()
            raise LoopbackUnavailable(f"{method} {uri}: {error!r}") from error

    def _send(self, method: str, uri: str, body: bytes | memoryview) -> tuple[int, bytes]:
        connection = self._connection()
        headers = {**self._headers, "Content-Length": str(len(body))}
        connection.request(method, uri, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._new_connection()
        return connection

    def _new_connection(self) -> http.client.HTTPConnection:
        if not self.https:
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        # Our own server, on the loopback interface: its certificate is not checked.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(
            self.host, self.port, timeout=self.timeout, context=context
        )

    def _close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    @staticmethod
    def _error_of(status: int, answer: bytes, uri: str) -> Exception:
        """The core's error as the SDK reports it; an answer without the core's error body
        (authentication, another plugin's HTTP filter) means the call never reached the core."""
        try:
            error = json.loads(answer)
            return CoreError(int(error["OrthancStatus"]), str(error["OrthancError"]), uri)
        except (ValueError, KeyError, TypeError):
            return LoopbackUnavailable(f"POST {uri}: HTTP {status} {answer[:200]!r}")
