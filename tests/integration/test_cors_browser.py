"""CORS in headless Chromium: a page on another origin uses QIDO-RS, WADO-RS metadata, frames
and STOW-RS; a page on an origin that is not allowed is blocked by the browser.

Simple requests (QIDO-RS, metadata, frames asked with `?accept=`) go straight to Orthanc; the
ones that need a preflight (an `Accept` with a quote, STOW-RS's `multipart/related` body) go
through nginx with `samples/cors/nginx-cors.conf`, since Orthanc 1.10.1 answers OPTIONS itself.
"""

from __future__ import annotations

import base64
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from samples.ohif.viewer import NGINX, Nginx
from tests.harness import REPO, Orthanc, free_port, orthanc_available
from tests.helpers import derived, store

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
ALLOWED_PORT, REFUSED_PORT = free_port(), free_port()
ALLOWED = f"http://127.0.0.1:{ALLOWED_PORT}"
REFUSED = f"http://127.0.0.1:{REFUSED_PORT}"
SITE = REPO / "samples" / "cors" / "nginx-cors.conf"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not Path(NGINX).exists(), reason="Debian's nginx is not installed"),
    pytest.mark.skipif(not orthanc_available(), reason="no Orthanc"),
]

# Runs in the page: each call's status and what it read, or "blocked" when fetch throws.
SCRIPT = """async ({direct, proxied, study, series, sop, dicom}) => {
  const call = async (url, init, read) => {
    try {
      const answer = await fetch(url, init);
      return [answer.status, await read(answer), answer.headers.get('ETag') !== null];
    } catch (error) {
      return 'blocked';
    }
  };
  const json = async (answer) => (await answer.json()).length;
  const bytes = async (answer) => (await answer.arrayBuffer()).byteLength;
  const instance = `studies/${study}/series/${series}/instances/${sop}`;
  const octets = 'multipart/related; type="application/octet-stream"';
  const boundary = 'corsTestBoundary';
  const head = `--${boundary}\\r\\nContent-Type: application/dicom\\r\\n\\r\\n`;
  const file = Uint8Array.from(atob(dicom), (c) => c.charCodeAt(0));
  const body = new Blob([head, file, `\\r\\n--${boundary}--\\r\\n`]);
  const stowType = `multipart/related; type="application/dicom"; boundary=${boundary}`;
  return {
    qido: await call(`${direct}studies?StudyInstanceUID=${study}`,
                     {headers: {Accept: 'application/dicom+json'}}, json),
    metadata: await call(`${direct}studies/${study}/series/${series}/metadata`, {}, json),
    framesByParameter: await call(
      `${direct}${instance}/frames/1?accept=${encodeURIComponent(octets)}`, {}, bytes),
    framesByHeader: await call(
      `${proxied}${instance}/frames/1`, {headers: {Accept: octets}}, bytes),
    stow: await call(`${proxied}studies`, {method: 'POST', body,
                     headers: {'Content-Type': stowType, Accept: 'application/dicom+json'}},
                     async (answer) => Object.keys(await answer.json()).length),
  };
}"""


class CorsProxy(Nginx):
    """nginx with samples/cors/nginx-cors.conf in front of one Orthanc."""

    def __init__(self, run: Path, orthanc: Orthanc) -> None:
        super().__init__(
            run, f"127.0.0.1:{free_port()}", orthanc.url, dist=run, site_template=SITE.read_text()
        )

    def wait_until_ready(self, timeout: float) -> None:
        request = urllib.request.Request(
            self.url + "/dicom-web/?accept=application/vnd.sun.wadl%2Bxml"
        )
        for _ in range(int(timeout * 10)):
            try:
                with urllib.request.urlopen(request, timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer:\n{self.error_log()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    config = {"DicomWeb": {"Cors": {"AllowedOrigins": [ALLOWED]}}}
    orthanc = Orthanc(tmp_path_factory.mktemp("cors"), config).start()
    yield orthanc
    orthanc.stop()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, server: Orthanc) -> Iterator[CorsProxy]:
    nginx = CorsProxy(tmp_path_factory.mktemp("cors-nginx"), server).start()
    yield nginx
    nginx.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield instance
        instance.close()


class Page(BaseHTTPRequestHandler):
    """An empty page: a real local server, as Chromium lets only local pages reach loopback."""

    def do_GET(self) -> None:
        body = b"<html></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origins() -> Iterator[None]:
    servers = [
        ThreadingHTTPServer(("127.0.0.1", port), Page) for port in (ALLOWED_PORT, REFUSED_PORT)
    ]
    for http in servers:
        threading.Thread(target=http.serve_forever, daemon=True).start()
    yield
    for http in servers:
        http.shutdown()
        http.server_close()


def run_from(browser: Any, origin: str, arguments: dict[str, str]) -> dict[str, Any]:
    """SCRIPT run by a page of `origin`."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{origin}/index.html")
        return page.evaluate(SCRIPT, arguments)
    finally:
        context.close()


@pytest.fixture
def arguments(
    server: Orthanc, proxy: CorsProxy, origins: None, test_files: dict[str, Path]
) -> dict[str, str]:
    study, series = generate_uid(), generate_uid()
    stored = derived(test_files["ct"], study, series)
    store(server, [stored])
    sop = server.post(
        "/tools/find",
        json={"Level": "Instance", "Query": {"StudyInstanceUID": study}, "Expand": True},
    ).json()[0]["MainDicomTags"]["SOPInstanceUID"]
    return {
        "direct": server.url + "/dicom-web/",
        "proxied": proxy.url + "/dicom-web/",
        "study": study,
        "series": series,
        "sop": sop,
        "dicom": base64.b64encode(derived(test_files["mr"], study, series)).decode(),
    }


def test_a_page_on_an_allowed_origin_searches_retrieves_and_stores(
    browser: Any, server: Orthanc, arguments: dict[str, str]
) -> None:
    results = run_from(browser, ALLOWED, arguments)
    assert results["qido"] == [200, 1, True]
    assert results["metadata"] == [200, 1, True]
    assert results["framesByParameter"][0] == 200 and results["framesByParameter"][2]
    assert results["framesByHeader"][0] == 200
    assert results["stow"][0] == 200
    found = server.post(
        "/tools/find", json={"Level": "Instance", "Query": {"StudyInstanceUID": arguments["study"]}}
    )
    assert len(found.json()) == 2


def test_a_page_on_another_origin_is_blocked(
    browser: Any, server: Orthanc, arguments: dict[str, str]
) -> None:
    results = run_from(browser, REFUSED, arguments)
    assert results == {name: "blocked" for name in results}
    found = server.post(
        "/tools/find", json={"Level": "Instance", "Query": {"StudyInstanceUID": arguments["study"]}}
    )
    assert len(found.json()) == 1  # the preflight refused, STOW-RS was never sent
