"""STOW-RS stores through the HTTP loopback; a saturated HTTP server makes it rest, not quit."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from orthanc_dicomweb.http.multipart import encode_multipart
from orthanc_dicomweb.orthanc.loopback import RETRY_AFTER
from tests.harness import Orthanc
from tests.integration.test_stow import BOUNDARY, derive, stow

THREADS = 8  # the fewest the loopback accepts (4 stores + 4 kept free)


@contextmanager
def slow_uploads(orthanc: Orthanc, count: int) -> Iterator[None]:
    """`count` uploads that send their headers and a few bytes, then nothing: each holds one
    of the core's HTTP threads while it waits for the rest."""
    sockets = []
    try:
        for _ in range(count):
            upload = socket.create_connection(("127.0.0.1", orthanc.port))
            upload.sendall(
                b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n"
            )
            upload.sendall(b"DICM")
            sockets.append(upload)
        time.sleep(0.5)  # taken up by the server's threads
        yield
    finally:
        for upload in sockets:
            upload.close()


def loopback_stores(orthanc: Orthanc) -> int:
    """How many stores came through the HTTP server (SDK calls are not logged as HTTP)."""
    return orthanc.log_text().count("(http) POST /instances")


def one_instance(test_files: dict[str, Path]) -> bytes:
    return encode_multipart([(derive(test_files["ct"]), "application/dicom", None)], BOUNDARY)


def test_a_saturated_http_server_makes_the_loopback_rest_for_a_while(
    orthanc_factory: Callable[..., Orthanc], test_files: dict[str, Path]
) -> None:
    orthanc = orthanc_factory({"HttpThreadsCount": THREADS, "HttpTimeout": 2})
    with slow_uploads(orthanc, THREADS - 1):  # this STOW-RS request takes the last thread
        started = time.monotonic()
        assert new_stow(orthanc, test_files).status_code == 200  # through the SDK
        assert time.monotonic() - started < 10  # the loopback waited HttpTimeout (was 60 s)
    assert "through the SDK (one at a time) for 30 s" in orthanc.log_text()
    time.sleep(2)  # the store that timed out reaches the core once the uploads are gone
    resting = loopback_stores(orthanc)
    assert new_stow(orthanc, test_files).status_code == 200
    assert loopback_stores(orthanc) == resting  # resting: through the SDK
    time.sleep(RETRY_AFTER)
    assert new_stow(orthanc, test_files).status_code == 200
    assert loopback_stores(orthanc) == resting + 1  # was: one at a time until a restart


def new_stow(orthanc: Orthanc, test_files: dict[str, Path]) -> requests.Response:
    """A STOW-RS request on a connection of its own, closed afterwards (a kept-alive one holds
    one of the core's HTTP threads while it lasts)."""
    return stow(orthanc, one_instance(test_files), headers={"Connection": "close"})
