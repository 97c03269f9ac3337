"""The DICOMweb client against tiny local HTTP(S) servers (stdlib), with a fake Orthanc core."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orthanc_dicomweb.client.bodies import delete_uri, relative_uri
from orthanc_dicomweb.client.servers import ServerRegistry
from orthanc_dicomweb.client.service import DicomWebClient, jobs_path
from orthanc_dicomweb.config import Configuration, parse_servers
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.multipart import (
    iter_streamed_parts,
)
from orthanc_dicomweb.http.web import Request, handle
from orthanc_dicomweb.jobs.engine import JobEngine
from tests.fake_core import FakeCore
from tests.harness import PYDICOM_FILES
from tests.helpers import derived, multipart_body, multipart_parts
from tests.unit.fakes import http_error

BOUNDARY = "test-boundary"
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
Behaviour = Callable[[BaseHTTPRequestHandler], None]


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up on purpose (cancel, timeout) are no error here."""


class Remote:
    """A local HTTP server whose answers the test chooses per path; it records requests."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.requests: list[dict[str, Any]] = []
        remote = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                body = _read_request_body(self)
                remote.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": self.headers,
                        "body": body,
                    }
                )
                path = self.path.split("?")[0]
                remote.routes.get(path, lambda h: send(h, 404, b"{}"))(self)

            do_GET = do_POST = do_DELETE = _any

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/dicom-web/"
        serve = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        serve.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _read_request_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().strip(), 16)
            chunk = handler.rfile.read(size + 2)[:size]
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk)
    return handler.rfile.read(int(handler.headers.get("Content-Length", 0)))


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    length: int | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    handler.end_headers()
    handler.wfile.write(body)


def answer(status: int, body: bytes, content_type: str = "application/json") -> Behaviour:
    return lambda handler: send(handler, status, body, content_type)


def redirect(location: str, status: int = 302) -> Behaviour:
    """A redirection to `location`, without a body."""

    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return behaviour


SMALL_FILE = (PYDICOM_FILES / "SC_rgb_small_odd.dcm").read_bytes()


def fake_dicom(number: int) -> bytes:
    """Instance `number` of one series (the same bytes for the same number)."""
    return derived(SMALL_FILE, "1.2", "3.4", SOPInstanceUID=f"3.4.{number}", InstanceNumber=number)


def related(parts: list[bytes]) -> tuple[bytes, str]:
    body = multipart_body(parts, BOUNDARY, "application/dicom")  # not the plugin's encoder
    return body, f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def local_core(instances: int = 5) -> FakeCore:
    """Orthanc with one series of `instances` instances; stored instances are recorded."""
    return FakeCore(files=[fake_dicom(number) for number in range(instances)])


def series_of(core: FakeCore) -> str:
    return core.id_of("3.4")


def instance_ids(core: FakeCore) -> list[str]:
    return [instance.id for instance in core.of_level("Instance")]


def stored(core: FakeCore) -> list[bytes]:
    """What the client stored in the core."""
    stores = [body for method, uri, body in core.calls if (method, uri) == ("POST", "/instances")]
    return [body or b"" for body in stores]


@pytest.fixture
def remote() -> Iterator[Remote]:
    server = Remote()
    yield server
    server.close()


def make_client(
    url: str, core: FakeCore | None = None, definition: dict[str, Any] | None = None, **options: Any
) -> tuple[DicomWebClient, FakeCore]:
    core = core or local_core()
    servers = parse_servers({"far": {"Url": url, "HasDelete": True, **(definition or {})}})
    config = Configuration(servers=servers, http_timeout=5, **options)
    client = DicomWebClient(config, core, ServerRegistry(config, core), JobEngine())
    return client, core


def call(handler: Any, body: Any, path: str = "/dicom-web/servers/far/x") -> Any:
    request = Request("POST", path, ("far",), {}, {}, json.dumps(body).encode())
    return handle({"POST": handler}, request)


def message(response: Any) -> str:
    return json.loads(response.body)["Message"]


# --- proxied calls -----------------------------------------------------------------------


def test_get_passes_status_type_and_body_with_auth_headers_and_encoded_arguments(
    remote: Remote,
) -> None:
    remote.routes["/dicom-web/studies"] = answer(200, b"[1]", "application/dicom+json")
    client, _ = make_client(
        remote.url, definition={"Username": "u", "Password": "p", "HttpHeaders": {"X-A": "1"}}
    )
    body = {"Uri": "/studies", "HttpHeaders": {"X-B": "2"}, "Arguments": {"PatientName": "A B&C"}}
    response = call(client.get, body)
    assert (response.status, response.body, response.content_type) == (
        200,
        b"[1]",
        "application/dicom+json",
    )
    sent = remote.requests[-1]
    assert sent["path"] == "/dicom-web/studies?PatientName=A%20B%26C"
    assert sent["headers"]["Authorization"] == "Basic dTpw"
    assert (sent["headers"]["X-A"], sent["headers"]["X-B"]) == ("1", "2")


def test_remote_errors_become_clear_answers(remote: Remote) -> None:
    remote.routes["/dicom-web/missing"] = answer(404, b'{"why": "gone"}')
    remote.routes["/dicom-web/broken"] = answer(500, b"boom")
    remote.routes["/dicom-web/garbage"] = answer(200, b"<html>", "text/html")
    client, _ = make_client(remote.url)
    missing = call(client.get, {"Uri": "missing"})
    assert missing.status == 404
    assert "answered HTTP 404" in message(missing)
    broken = call(client.qido, {"Uri": "broken"})
    assert broken.status == 502
    assert "far" in message(broken)
    garbage = call(client.qido, {"Uri": "garbage"})
    assert garbage.status == 502
    assert "not JSON" in message(garbage)


def test_remote_down_is_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client, _ = make_client(f"http://127.0.0.1:{port}/dicom-web/")
    response = call(client.qido, {"Uri": "studies"})
    assert response.status == 502
    assert "unreachable" in message(response)


def test_timeout_is_504(remote: Remote) -> None:
    remote.routes["/dicom-web/slow"] = lambda h: (time.sleep(2), send(h, 200, b"[]"))
    client, _ = make_client(remote.url, definition={"Timeout": 1})
    started = time.monotonic()
    response = call(client.qido, {"Uri": "slow"})
    assert response.status == 504
    assert "within 1 s" in message(response)
    assert time.monotonic() - started < 1.9


def test_http_proxy_is_used(remote: Remote) -> None:
    remote.routes["http://far.example/dicom-web/studies"] = answer(200, b"[]")
    client, _ = make_client("http://far.example/dicom-web/", http_proxy=remote.url[:-10])
    assert call(client.qido, {"Uri": "studies"}).status == 200
    assert remote.requests[-1]["path"] == "http://far.example/dicom-web/studies"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"Uri": 3},
        {"Uri": "http://evil.example/x"},
        {"Uri": "//evil.example/x"},
        {"Uri": "studies/../../admin"},
        {"Uri": "studies\r\nX: y"},
        {"Uri": "studies", "Arguments": ["a"]},
        {"Uri": "studies", "HttpHeaders": {"X": {"deep": 1}}},
        {"Uri": "studies", "HttpHeaders": {"X": "a\r\nInjected: 1"}},
        [1, 2],
    ],
)
def test_bad_proxy_bodies_are_400(remote: Remote, body: Any) -> None:
    client, _ = make_client(remote.url)
    response = call(client.get, body)
    assert response.status == 400, response.body
    assert remote.requests == []


def test_unknown_server_is_404(remote: Remote) -> None:
    client, _ = make_client(remote.url)
    request = Request("POST", "/x", ("nope",), {}, {}, b'{"Uri": "studies"}')
    assert handle({"POST": client.get}, request).status == 404


def test_delete_needs_has_delete_and_builds_the_uri(remote: Remote) -> None:
    remote.routes["/dicom-web/studies/1.2/series/3.4"] = answer(204, b"")
    client, _ = make_client(remote.url)
    body = {"Level": "Series", "StudyInstanceUID": "1.2", "SeriesInstanceUID": "3.4"}
    assert call(client.delete, body).status == 200
    assert remote.requests[-1]["method"] == "DELETE"
    refusing, _ = make_client(remote.url, definition={"HasDelete": False})
    assert call(refusing.delete, body).status == 400
    assert call(client.delete, {"Level": "Series", "StudyInstanceUID": "1.2"}).status == 400
    assert call(client.delete, {"Level": "Patient"}).status == 400


def test_uri_helpers() -> None:
    assert relative_uri("/studies/1.2") == "studies/1.2"
    assert (
        delete_uri(
            {
                "Level": "Instance",
                **dict.fromkeys(("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"), "1.2"),
            }
        )
        == "studies/1.2/series/1.2/instances/1.2"
    )
    assert jobs_path("/dicom-web/servers/far/stow", "id") == "../../../jobs/id"
    with pytest.raises(HttpError):
        relative_uri("https://x/")


# --- TLS -----------------------------------------------------------------------------------


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_context(certificate: tuple[Path, Path], client_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(client_ca))
    return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_remote(certificate: tuple[Path, Path]) -> Iterator[Remote]:
    server = Remote(tls_context(certificate))
    server.routes["/dicom-web/studies"] = answer(200, b"[]")
    yield server
    server.close()


def test_a_certificate_that_does_not_verify_is_502(tls_remote: Remote) -> None:
    client, _ = make_client(tls_remote.url)
    response = call(client.qido, {"Uri": "studies"})
    assert response.status == 502
    assert "TLS certificate" in message(response)


def test_ca_certificates_and_verify_peers_options(
    tls_remote: Remote, certificate: tuple[Path, Path]
) -> None:
    trusted, _ = make_client(tls_remote.url, https_ca_certificates=str(certificate[0]))
    assert call(trusted.qido, {"Uri": "studies"}).status == 200
    unverified, _ = make_client(tls_remote.url, https_verify_peers=False)
    assert call(unverified.qido, {"Uri": "studies"}).status == 200


def test_client_certificate_is_loaded_and_sent(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    server = Remote(tls_context(certificate, client_ca=certificate[0]))
    server.routes["/dicom-web/studies"] = answer(200, b"[]")
    try:
        cert = {"CertificateFile": str(certificate[0]), "CertificateKeyFile": str(certificate[1])}
        options = {"https_ca_certificates": str(certificate[0])}
        with_cert, _ = make_client(server.url, definition=cert, **options)
        assert call(with_cert.qido, {"Uri": "studies"}).status == 200
        without, _ = make_client(server.url, **options)
        assert call(without.qido, {"Uri": "studies"}).status == 502
        missing = {**cert, "CertificateFile": str(tmp_path / "none.pem")}
        broken, _ = make_client(server.url, definition=missing, **options)
        response = call(broken.qido, {"Uri": "studies"})
        assert response.status == 400
        assert "client certificate" in message(response)
    finally:
        server.close()


def test_pkcs11_is_reported_as_unavailable(remote: Remote) -> None:
    client, _ = make_client(remote.url, definition={"Pkcs11": True})
    response = call(client.qido, {"Uri": "studies"})
    assert response.status == 501
    assert "Pkcs11" in message(response)


# --- STOW-RS push ----------------------------------------------------------------------


def stow_answer(handler: BaseHTTPRequestHandler) -> None:
    send(handler, 200, b'{"00081198": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", '
         b'"Value": ["9.9"]}}]}}', "application/dicom+json")  # fmt: skip


@pytest.mark.parametrize("chunked", [True, False])
def test_stow_splits_into_bounded_requests(remote: Remote, chunked: bool) -> None:
    remote.routes["/dicom-web/studies"] = stow_answer
    core = local_core(instances=5)
    client, _ = make_client(remote.url, core, {"ChunkedTransfers": chunked}, stow_max_instances=2)
    response = call(client.stow, {"Resources": [series_of(core)]})
    assert response.status == 200, response.body
    content = json.loads(response.body)
    assert content["InstancesCount"] == "5"
    assert content["Instances"] == instance_ids(core)
    assert content["FailedInstances"] == ["9.9", "9.9", "9.9"]
    assert len(remote.requests) == 3
    for sent in remote.requests:
        assert sent["headers"]["Content-Type"].startswith(
            'multipart/related; type="application/dicom"'
        )
        encoding = sent["headers"].get("Transfer-Encoding")
        assert (encoding == "chunked") is chunked
    parts = [  # read by the email package, not by the plugin's parser
        part.body
        for sent in remote.requests
        for part in multipart_parts(sent["headers"]["Content-Type"], sent["body"])
    ]
    assert parts == [instance.file for instance in core.of_level("Instance")]


def test_stow_bad_resources(remote: Remote) -> None:
    client, core = make_client(remote.url)
    assert call(client.stow, {"Resources": "x"}).status == 400
    assert call(client.stow, {"Resources": []}).status == 400
    assert call(client.stow, {"Resources": ["../../etc"]}).status == 400
    unknown = "0badbad0-00000000-00000000-00000000-00000000"
    assert call(client.stow, {"Resources": [unknown]}).status == 404
    body = {"Resources": [series_of(core)], "Synchronous": "no"}
    assert call(client.stow, body).status == 400
    assert call(client.stow, {"Resources": [series_of(core)], "Priority": 1.5}).status == 400


def test_stow_failure_names_the_server_and_keeps_what_was_sent(remote: Remote) -> None:
    calls = []

    def fail_second(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        (stow_answer if len(calls) == 1 else answer(500, b"disk full"))(handler)

    remote.routes["/dicom-web/studies"] = fail_second
    client, core = make_client(remote.url, stow_max_instances=2)
    response = call(client.stow, {"Resources": [series_of(core)], "Synchronous": False})
    job = client.engine.wait(client.engine.get(json.loads(response.body)["ID"]), timeout=5)
    described = client.engine.describe(job.id)
    assert described["State"] == "Failure"
    assert "far" in described["ErrorDescription"]
    assert "HTTP 500" in described["ErrorDescription"]
    assert len(described["Content"]["Instances"]) == 2
    remote.routes["/dicom-web/studies"] = stow_answer
    client.engine.resubmit(job.id)
    client.engine.wait(job, timeout=5)
    assert client.engine.describe(job.id)["Content"]["Instances"] == instance_ids(core)


# --- WADO-RS retrieve --------------------------------------------------------------------


def test_retrieve_stores_every_part_with_universal_transfer_syntax(remote: Remote) -> None:
    body, content_type = related([fake_dicom(1), fake_dicom(2)])
    remote.routes["/dicom-web/studies/1.2"] = answer(200, body, content_type)
    remote.routes["/dicom-web/studies/1.2/series/3.4"] = answer(200, *related([fake_dicom(3)]))
    client, core = make_client(remote.url)
    resources = [{"Study": "1.2"}, {"Study": "1.2", "Series": "3.4"}]
    response = call(client.retrieve, {"Resources": resources})
    assert response.status == 200, response.body
    content = json.loads(response.body)
    assert content["ReceivedInstancesCount"] == "3"
    assert len(content["Instances"]) == 3
    assert stored(core) == [fake_dicom(1), fake_dicom(2), fake_dicom(3)]
    retrieves = [r for r in remote.requests if r["path"].startswith("/dicom-web/studies/1.2")]
    assert "transfer-syntax=*" in retrieves[0]["headers"]["Accept"]


def test_retrieve_without_universal_transfer_syntax(remote: Remote) -> None:
    remote.routes["/dicom-web/studies/1.2"] = answer(200, *related([fake_dicom(1)]))
    client, _ = make_client(remote.url, definition={"HasWadoRsUniversalTransferSyntax": False})
    assert call(client.wado, {"Uri": "/studies/1.2"}).status == 200
    assert "transfer-syntax" not in remote.requests[-1]["headers"]["Accept"]


@pytest.mark.parametrize(
    "resources",
    [[{"Series": "1.2"}], [{"Study": "1.2", "Instance": "3"}], [{"Study": "x;y"}], ["1.2"]],
)
def test_bad_retrieve_resources_are_400(remote: Remote, resources: Any) -> None:
    client, _ = make_client(remote.url)
    assert call(client.retrieve, {"Resources": resources}).status == 400


def test_garbage_and_truncated_answers_fail_but_keep_stored_parts(remote: Remote) -> None:
    body, content_type = related([fake_dicom(1), fake_dicom(2)])
    remote.routes["/dicom-web/studies/1.1"] = answer(200, b"not dicom", "text/plain")
    cut = body[: body.index(fake_dicom(2)) + 20]
    remote.routes["/dicom-web/studies/1.2"] = answer(200, cut, content_type)
    remote.routes["/dicom-web/studies/1.3"] = answer(200, *related([b"not a DICOM file"]))
    client, core = make_client(remote.url)
    garbage = call(client.retrieve, {"Resources": [{"Study": "1.1"}]})
    assert garbage.status == 502
    assert "far" in message(garbage)
    truncated = call(client.retrieve, {"Resources": [{"Study": "1.2"}]})
    assert truncated.status == 502
    assert stored(core) == [fake_dicom(1)]
    refused = call(client.retrieve, {"Resources": [{"Study": "1.3"}]})
    assert refused.status == 502
    assert "cannot be stored" in message(refused)


def test_a_remote_closing_mid_transfer_fails_the_job(remote: Remote) -> None:
    body, content_type = related([fake_dicom(1), fake_dicom(2)])

    def close_early(handler: BaseHTTPRequestHandler) -> None:
        send(handler, 200, body[:100], content_type, length=len(body))
        handler.close_connection = True

    remote.routes["/dicom-web/studies/1.2"] = close_early
    client, _ = make_client(remote.url)
    response = call(client.retrieve, {"Resources": [{"Study": "1.2"}]})
    assert response.status == 502
    assert "mid-transfer" in message(response) or "connection lost" in message(response)


def test_cancel_stops_a_slow_retrieve_promptly(remote: Remote) -> None:
    content_type = related([fake_dicom(1)])[1]

    def slow(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"10\r\n" + b"x" * 16 + b"\r\n")
            handler.wfile.flush()
            time.sleep(0.05)

    remote.routes["/dicom-web/studies/1.2"] = slow
    client, _ = make_client(remote.url)
    started = call(client.retrieve, {"Resources": [{"Study": "1.2"}], "Synchronous": False})
    job = client.engine.get(json.loads(started.body)["ID"])
    assert job is not None
    time.sleep(0.3)
    began = time.monotonic()
    client.engine.cancel(job.id)
    client.engine.wait(job, timeout=5)
    assert job.state.value == "Failure"
    assert time.monotonic() - began < 1


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 100_000])
def test_streamed_parts_are_found_whatever_the_chunks(chunk_size: int) -> None:
    payloads = [fake_dicom(1), b"", b"--test-boundar", fake_dicom(2)]
    body = b"preamble\r\n" + related(payloads)[0] + b"epilogue"
    chunks = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
    assert list(iter_streamed_parts(chunks, BOUNDARY)) == payloads


def test_streamed_parts_stop_at_a_truncation() -> None:
    body = related([fake_dicom(1), fake_dicom(2)])[0]
    parts = iter_streamed_parts([body[: body.index(fake_dicom(2)) + 5]], BOUNDARY)
    assert next(parts) == fake_dicom(1)
    error = http_error(next, parts)
    assert error.status == 400
    no_headers = b"--b\r\nX-Only: header-without-blank-line\r\n--b--"
    with pytest.raises(HttpError):
        list(iter_streamed_parts([no_headers], "b"))


def test_retrieve_is_refused_when_orthanc_is_read_only(remote: Remote) -> None:
    client, _ = make_client(remote.url, read_only=True)
    response = call(client.retrieve, {"Resources": [{"Study": "1.2"}]})
    assert response.status == 403
    assert remote.requests == []


def test_qido_keys_keep_wildcards_and_lists_unencoded(remote: Remote) -> None:
    # The official plugin 1.7 does not percent-decode: `%2ASMITH%2A` would find nothing there.
    remote.routes["/dicom-web/studies"] = answer(200, b"[]", "application/dicom+json")
    client, _ = make_client(remote.url)
    arguments = {"PatientName": "*SMITH^J?*", "ModalitiesInStudy": "CT,MR", "X": "a+b c#"}
    call(client.qido, {"Uri": "/studies", "Arguments": arguments})
    assert remote.requests[-1]["path"] == (
        "/dicom-web/studies?PatientName=*SMITH%5EJ?*&ModalitiesInStudy=CT,MR&X=a%2Bb%20c%23"
    )


def test_retrieve_progress_follows_the_instances_counted_by_qido(remote: Remote) -> None:
    files = [fake_dicom(i) for i in range(4)]
    remote.routes["/dicom-web/studies/1.2"] = answer(200, *related(files))
    counted = json.dumps([{"00201208": {"vr": "IS", "Value": [4]}}]).encode()
    remote.routes["/dicom-web/studies"] = answer(200, counted, "application/dicom+json")
    client, _ = make_client(remote.url)
    seen: list[tuple[float, str]] = []
    report = client.engine._report

    def recording(job: Any, progress: float) -> None:
        seen.append((progress, job.content["ReceivedInstancesCount"]))
        report(job, progress)

    client.engine._report = recording  # type: ignore[method-assign]
    response = call(client.retrieve, {"Resources": [{"Study": "1.2"}]})
    assert response.status == 200, response.body
    assert json.loads(response.body)["InstancesCount"] == "4"
    assert seen[:4] == [(0.25, "1"), (0.5, "2"), (0.75, "3"), (0.99, "4")]
    assert "StudyInstanceUID=1.2" in remote.requests[0]["path"]


# --- fidelity and abuse (issues 15, 16) ---------------------------------------------------------


def test_stow_answer_lists_the_resources_by_level_as_the_official_plugin(remote: Remote) -> None:
    remote.routes["/dicom-web/studies"] = stow_answer
    client, core = make_client(remote.url)
    series, instances = series_of(core), instance_ids(core)
    content = json.loads(call(client.stow, {"Resources": [series, instances[0]]}).body)
    assert content["Resources"] == {"Series": [series], "Instances": instances}
    assert content["Server"] == "far"


@pytest.mark.parametrize(
    "uri",
    [
        "%2e%2e/%2e%2e/system",
        "studies/%2E%2E/%2e%2e/%2e%2e/system",
        "studies%2F..%2F..%2Fsystem",
        "%252e%252e/system",
        "studies/%5c..%5csystem",
        "./system",
        "../system",
    ],
)
def test_uris_that_leave_the_base_path_are_refused_decoded(uri: str) -> None:
    assert http_error(relative_uri, uri).status == 400


def test_encoded_uris_that_stay_below_are_sent_unchanged() -> None:
    assert relative_uri("studies/1.2%2E3?PatientName=a%2Fb") == "studies/1.2%2E3?PatientName=a%2Fb"
