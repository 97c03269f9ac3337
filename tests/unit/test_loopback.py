"""The HTTP loopback client against a small local server: answers, errors, retry, refusals."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from orthanc_dicomweb.orthanc.core import CoreError
from orthanc_dicomweb.orthanc.loopback import Loopback, LoopbackUnavailable, unusable_reason
from tests.harness import free_port


class FakeOrthanc(BaseHTTPRequestHandler):
    """Answers POSTs from the server's `answers` queue: (status, body, close afterwards)."""

    protocol_version = "HTTP/1.1"  # keeps connections alive, as Orthanc does

    def do_POST(self) -> None:
        server: Any = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.received.append((self.path, self.headers.get("Authorization"), body))
        status, answer, close = server.answers.pop(0) if server.answers else (200, b"{}", False)
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        if close:  # like a keep-alive timeout: closed without telling the client
            self.close_connection = True

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Any]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOrthanc)
    httpd.daemon_threads = True
    httpd.received = []  # type: ignore[attr-defined]
    httpd.answers = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def client(server: Any, **options: Any) -> Loopback:
    return Loopback(server.server_address[1], "Bearer secret", **options)


def orthanc_error(code: int, text: str) -> bytes:
    return json.dumps({"HttpStatus": 400, "OrthancError": text, "OrthancStatus": code}).encode()


def test_posts_with_the_authorization_and_answers_the_body(server: Any) -> None:
    server.answers.append((200, b'{"ID": "abc"}', False))
    assert client(server).post("/instances", memoryview(b"DICM")) == b'{"ID": "abc"}'
    assert server.received == [("/instances", "Bearer secret", b"DICM")]


@pytest.mark.parametrize(("code", "status"), [(15, 400), (19, 507), (8, 400), (-1, 500)])
def test_core_errors_carry_the_sdk_code(server: Any, code: int, status: int) -> None:
    server.answers.append((500, orthanc_error(code, "Some error"), False))
    with pytest.raises(CoreError) as caught:
        client(server).post("/instances", b"x")
    assert (caught.value.code, caught.value.status) == (code, status)
    assert caught.value.message == "Orthanc core: Some error"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_before_the_core_is_unavailability(server: Any, status: int) -> None:
    server.answers.append((status, b"", False))  # authentication, another plugin's filter
    with pytest.raises(LoopbackUnavailable):
        client(server).post("/instances", b"x")


def test_a_stale_kept_alive_connection_is_retried_once(server: Any) -> None:
    loopback = client(server)
    server.answers.append((200, b"first", True))
    assert loopback.post("/instances", b"1") == b"first"
    server.answers.append((200, b"second", False))
    assert loopback.post("/instances", b"2") == b"second"
    assert [body for _, _, body in server.received] == [b"1", b"2"]


def test_each_thread_has_its_own_connection(server: Any) -> None:
    loopback = client(server)
    answers: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: answers.append(loopback.post("/instances", b"x")))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [b"{}"] * 4


def test_no_server_is_unavailability() -> None:
    with pytest.raises(LoopbackUnavailable):
        Loopback(free_port(), "").post("/instances", b"x")


def test_after_a_failure_the_loopback_rests_then_is_available_again() -> None:
    now = [100.0]
    loopback = Loopback(free_port(), "", retry_after=30, clock=lambda: now[0])
    assert loopback.available()
    with pytest.raises(LoopbackUnavailable):
        loopback.post("/instances", b"x")
    assert not loopback.available()
    now[0] += 29
    assert not loopback.available()
    now[0] += 1
    assert loopback.available()


def test_core_errors_do_not_make_the_loopback_rest(server: Any) -> None:
    loopback = client(server)
    server.answers.append((500, orthanc_error(15, "Bad file format"), False))
    with pytest.raises(CoreError):
        loopback.post("/instances", b"x")
    assert loopback.available()


def test_a_silent_server_times_out() -> None:
    with socket.socket() as listening:  # accepts connections, never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        loopback = Loopback(listening.getsockname()[1], "", timeout=0.2)
        with pytest.raises(LoopbackUnavailable):
            loopback.post("/instances", b"x")


@pytest.mark.parametrize(
    ("configuration", "usable"),
    [
        ({}, True),
        ({"HttpThreadsCount": 6}, True),
        ({"HttpThreadsCount": 5}, False),
        ({"HttpServerEnabled": False}, False),
        ({"SslEnabled": True}, True),
        ({"SslEnabled": True, "SslVerifyPeers": True}, False),
        ({"HttpDescribeErrors": False}, False),
    ],
)
def test_nested_calls_need_a_safe_configuration(configuration: dict, usable: bool) -> None:
    assert (unusable_reason(configuration, 2) is None) == usable
