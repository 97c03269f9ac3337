"""OHIF Viewer v3 opening a 300-image CT study: this plugin against the official C++ plugin.

    .venv/bin/python -m benchmarks.ohif [--turns 5]

Both Orthancs hold the benchmark CT series (benchmarks/dataset.py: 300 slices of 512x512,
RLE Lossless), each behind its own nginx serving the same OHIF build (samples/ohif/). Headless
Chromium (WebGL through SwiftShader) opens the study in the viewer, side after side, and the
page itself times, from the navigation's start:

- the first image drawn (cornerstone's first IMAGE_RENDERED event in the viewport);
- all images loaded (an IMAGE_LOADED event for each of the 300 images: fetched and decoded);
- the last frame fetched (resource timing of the 300 frame requests).

To tell which part limits, each opening also records the CPU time used meanwhile by Orthanc,
nginx and the browser, and nginx's log (time spent upstream against time at the proxy); and
the same 300 frame requests are then sent without a browser, six at a time as Chromium does
per origin, to Orthanc directly and through nginx.

nginx asks Orthanc for answers without gzip (samples/ohif/nginx-site.conf): Orthanc would gzip
every frame for browsers, which always accept gzip. ``--orthanc-gzip`` measures that case.

The official plugin 1.7 has no thumbnail route: its viewer draws thumbnails from the frames
(``thumbnailRendering: 'wadors'``). This plugin is measured with samples/ohif/app-config.js
(thumbnails from the plugin) and with the official side's configuration.
Results: printed, and written to benchmarks/results/ohif.json (ohif-orthanc-gzip.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from benchmarks import dataset, measure
from samples.ohif.viewer import APP_CONFIG, SITE_TEMPLATE, Nginx, fetch_viewer
from tests.harness import REPO, Orthanc, free_port

RESULTS = REPO / "benchmarks" / "results" / "ohif.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
BROWSER_CONNECTIONS = 6  # Chromium's HTTP/1.1 connections per origin
OPENING_TIMEOUT = 180
# Runs in the page before OHIF: its tour and banner stay closed; the events are timed.
INSTRUMENT = """
localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']));
sessionStorage.setItem('investigationalUseDialog', 'hidden');
performance.setResourceTimingBufferSize(10000);
window.__bench = {rendered: null, loaded: new Set(), lastLoaded: null};
// Capture phase: cornerstone's events do not bubble, but pass the document on their way down.
document.addEventListener('CORNERSTONE_IMAGE_RENDERED', () => {
  if (window.__bench.rendered === null) window.__bench.rendered = performance.now();
}, true);
const hook = setInterval(() => {
  const cs = window.cornerstone;
  if (!cs || !cs.eventTarget) return;
  clearInterval(hook);
  cs.eventTarget.addEventListener(cs.EVENTS.IMAGE_LOADED, event => {
    window.__bench.loaded.add(event.detail.image.imageId);
    window.__bench.lastLoaded = performance.now();
  });
}, 2);
"""
PROGRESS = """() => {
  const all = performance.getEntriesByType('resource');
  const frames = all.filter(e => e.name.includes('/frames/'));
  const server = all.filter(e => e.name.includes('/dicom-web/'));
  const metadata = all.filter(e => e.name.endsWith('/metadata'));
  return {rendered: window.__bench.rendered, loaded: window.__bench.loaded.size,
          lastLoaded: window.__bench.lastLoaded, frames: frames.length,
          firstRequest: server.length ? Math.min(...server.map(e => e.startTime)) : null,
          metadata: metadata.length ? Math.max(...metadata.map(e => e.responseEnd)) : null,
          firstFrame: frames.length ? Math.min(...frames.map(e => e.responseEnd)) : null,
          lastFrame: frames.length ? Math.max(...frames.map(e => e.responseEnd)) : null,
          frameUrls: frames.map(e => e.name)};
}"""
# The same frame requests from the page, six at a time, and nothing done with the answers.
FETCH_IN_PAGE = """async ([urls, accept]) => {
  const start = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < urls.length) {
      const response = await fetch(urls[next++], {headers: {Accept: accept}, cache: 'no-store'});
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({length: 6}, worker));
  return performance.now() - start;
}"""


@dataclass
class Side:
    name: str
    orthanc: Orthanc
    nginx: Nginx
    page: Any = None
    openings: list[dict[str, float]] = field(default_factory=list)
    accept: str = ""
    frame_urls: list[str] = field(default_factory=list)


# --- processes and their CPU time -----------------------------------------------------------


def parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[int(entry.name)] = int(fields[1])
    return found


def tree(root: int, links: dict[int, int]) -> set[int]:
    members, grew = {root}, True
    while grew:
        new = {pid for pid, parent in links.items() if parent in members} - members
        members |= new
        grew = bool(new)
    return members


def cpu_of(pids: set[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # ended meanwhile
            total += measure.cpu_seconds(pid)
    return total


def cpu_by_role(sides: list[Side]) -> dict[str, float]:
    """CPU seconds so far of every Orthanc, every nginx, and the rest of our children (the
    browser with Playwright's driver)."""
    links = parents()
    everything = tree(os.getpid(), links) - {os.getpid()}
    orthancs = {side.orthanc.process.pid for side in sides if side.orthanc.process}
    proxies = set().union(
        *(tree(side.nginx.process.pid, links) for side in sides if side.nginx.process)
    )
    return {
        "orthanc": cpu_of(orthancs),
        "nginx": cpu_of(proxies),
        "browser": cpu_of(everything - orthancs - proxies),
    }


# --- one opening of the study ---------------------------------------------------------------


def nginx_times(side: Side, since: int) -> dict[str, float]:
    """From nginx's log lines after `since`: seconds upstream, and at the proxy, in all."""
    upstream = proxy = 0.0
    for line in side.nginx.access_log()[since:]:
        fields = line.split()
        if "/dicom-web/" not in fields[2]:
            continue
        # "0.004" or, when nginx tried a second connection, "0.000, 0.004"; "-" for none.
        tries = line.rsplit('"', 2)[1].replace(",", " ").split()
        upstream_time = sum(float(value) for value in tries if value != "-")
        upstream += upstream_time
        proxy += float(fields[4]) - upstream_time
    return {"upstream_s": upstream, "proxy_s": proxy}


def open_study(side: Side, sides: list[Side], study_uid: str, images: int) -> dict[str, float]:
    """Open the study once; times in ms from the navigation's start, CPU in seconds."""
    log_mark = len(side.nginx.access_log())
    cpu_before = cpu_by_role(sides)
    side.page.goto(f"{side.nginx.url}/viewer?StudyInstanceUIDs={study_uid}")
    deadline = time.monotonic() + OPENING_TIMEOUT
    while True:
        progress = side.page.evaluate(PROGRESS)
        if progress["loaded"] >= images and progress["frames"] >= images:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{side.name}: not every image loaded: {progress}")
        time.sleep(0.05)
    cpu_after = cpu_by_role(sides)
    side.frame_urls = progress["frameUrls"]
    start = progress["firstRequest"]  # the viewer's code is loaded and running
    time.sleep(0.5)  # nginx writes its log line once the answer is sent
    return {
        "first_request_ms": progress["firstRequest"],
        "metadata_ms": progress["metadata"],
        "first_frame_ms": progress["firstFrame"],
        "first_image_ms": progress["rendered"],
        "all_loaded_ms": progress["lastLoaded"],
        "last_frame_ms": progress["lastFrame"],
        "first_image_after_start_ms": progress["rendered"] - start,
        "all_loaded_after_start_ms": progress["lastLoaded"] - start,
        **{f"cpu_{role}_s": cpu_after[role] - cpu_before[role] for role in cpu_after},
        **nginx_times(side, log_mark),
    }


def session_with_retries() -> requests.Session:
    """A session that sends a GET again on a connection the server closed as it was reused
    (Orthanc closes kept-alive connections idle for a second, a race on a loaded machine)."""
    session = requests.Session()
    retries = Retry(total=3, connect=3, read=3, allowed_methods=["GET"], backoff_factor=0.05)
    session.mount("http://", HTTPAdapter(max_retries=retries))
    return session


def fetch_frames(urls: list[str], accept: str, encoding: str) -> float:
    """Seconds to fetch every URL, BROWSER_CONNECTIONS at a time, as the browser does."""
    sessions = [session_with_retries() for _ in range(BROWSER_CONNECTIONS)]
    headers = {"Accept": accept, "Accept-Encoding": encoding}

    def fetch(index: int) -> None:
        response = sessions[index % BROWSER_CONNECTIONS].get(urls[index], headers=headers)
        response.raise_for_status()

    start = time.perf_counter()
    with ThreadPoolExecutor(BROWSER_CONNECTIONS) as pool:
        list(pool.map(fetch, range(len(urls))))
    return time.perf_counter() - start


def fetches_in_page(side: Side, repetitions: int = 3) -> float:
    """ms for the page to fetch the opening's frames (no decoding, no drawing), median."""
    side.page.goto(f"{side.nginx.url}/manifest.json")
    times = []
    for _ in range(repetitions):
        measure.wait_until_idle(side.orthanc.process.pid)
        times.append(side.page.evaluate(FETCH_IN_PAGE, [side.frame_urls, side.accept]))
    return statistics.median(times)


def direct_fetches(side: Side, repetitions: int = 3) -> dict[str, float]:
    """The opening's frame requests without OHIF: from the page, and from Python to Orthanc
    (without gzip, then accepting gzip as browsers do) and through nginx; medians, in ms."""
    direct = [url.replace(side.nginx.url, side.orthanc.url) for url in side.frame_urls]
    results = {"in_page_ms": fetches_in_page(side, repetitions)}
    for name, urls, encoding in (
        ("orthanc_direct_ms", direct, "identity"),
        ("orthanc_direct_gzip_ms", direct, "gzip, deflate, br"),
        ("through_nginx_ms", side.frame_urls, "gzip, deflate, br"),
    ):
        times = []
        for _ in range(repetitions):
            measure.wait_until_idle(side.orthanc.process.pid)
            times.append(fetch_frames(urls, side.accept, encoding) * 1000)
        results[name] = statistics.median(times)
    return results


# --- set-up ---------------------------------------------------------------------------------


def start_side(
    work: Path,
    name: str,
    official: bool,
    data: dataset.BenchData,
    app_config: str,
    site: str,
    orthanc: Orthanc | None = None,
) -> Side:
    if orthanc is None:
        orthanc = Orthanc(work / name, official=official).start()
        orthanc.put("/tools/log-level", data="default").raise_for_status()
        for path in data.ct_files:
            orthanc.post("/instances", data=path.read_bytes()).raise_for_status()
    listen = f"127.0.0.1:{free_port()}"
    run = work / f"nginx-{name}"
    nginx = Nginx(run, listen, orthanc.url, fetch_viewer(), app_config, site).start()
    return Side(name, orthanc, nginx)


def frames_thumbnails() -> str:
    """The viewer configuration with thumbnails drawn from the frames (no thumbnail route)."""
    text = APP_CONFIG.read_text()
    assert "thumbnailRendering: 'thumbnail'" in text
    return text.replace("thumbnailRendering: 'thumbnail'", "thumbnailRendering: 'wadors'")


def site_template(orthanc_gzip: bool) -> str:
    """The nginx site; with `orthanc_gzip`, the browser's Accept-Encoding reaches Orthanc."""
    text = SITE_TEMPLATE.read_text()
    line = '        proxy_set_header Accept-Encoding "";\n'
    assert line in text
    return text.replace(line, "") if orthanc_gzip else text


def start_sides(work: Path, data: dataset.BenchData, orthanc_gzip: bool) -> list[Side]:
    site = site_template(orthanc_gzip)
    python = start_side(work, "python", False, data, APP_CONFIG.read_text(), site)
    same = start_side(
        work, "python-wadors-thumbnails", False, data, frames_thumbnails(), site, python.orthanc
    )
    official = start_side(work, "official", True, data, frames_thumbnails(), site)
    return [python, same, official]


def capture_accept(side: Side) -> None:
    def seen(request: Any) -> None:
        if "/frames/" in request.url and not side.accept:
            side.accept = request.headers.get("accept", "")

    side.page.on("request", seen)


def summary(side: Side) -> dict[str, Any]:
    measured = side.openings[1:]  # the first opening warms the browser's cache and the server
    keys = measured[0].keys()
    return {
        "first_opening": side.openings[0],
        "median": {key: statistics.median(o[key] for o in measured) for key in keys},
        "min": {key: min(o[key] for o in measured) for key in keys},
        "max": {key: max(o[key] for o in measured) for key in keys},
        "openings": len(measured),
        "accept": side.accept,
    }


def print_table(results: dict[str, Any]) -> None:
    names = list(results["sides"])
    rows = [
        ("viewer's first request (ms)", "first_request_ms"),
        ("series metadata fetched (ms)", "metadata_ms"),
        ("first frame fetched (ms)", "first_frame_ms"),
        ("first image drawn (ms)", "first_image_ms"),
        ("all 300 images loaded (ms)", "all_loaded_ms"),
        ("last frame fetched (ms)", "last_frame_ms"),
        ("first image, from first request (ms)", "first_image_after_start_ms"),
        ("all loaded, from first request (ms)", "all_loaded_after_start_ms"),
        ("CPU Orthanc (s)", "cpu_orthanc_s"),
        ("CPU nginx (s)", "cpu_nginx_s"),
        ("CPU browser (s)", "cpu_browser_s"),
        ("time upstream, summed (s)", "upstream_s"),
        ("time at the proxy, summed (s)", "proxy_s"),
    ]
    print(f"{'median of openings':40}" + "".join(f"{name:>26}" for name in names))
    for label, key in rows:
        values = [results["sides"][name]["median"][key] for name in names]
        print(f"{label:40}" + "".join(f"{value:26.2f}" for value in values))
    for label, key in (
        ("300 frames, Orthanc direct (ms)", "orthanc_direct_ms"),
        ("300 frames, Orthanc direct, gzip (ms)", "orthanc_direct_gzip_ms"),
        ("300 frames, through nginx (ms)", "through_nginx_ms"),
        ("300 frames, fetched by the page (ms)", "in_page_ms"),
    ):
        values = [results["sides"][name]["fetch"][key] for name in names]
        print(f"{label:40}" + "".join(f"{value:26.1f}" for value in values))


def run(turns: int, orthanc_gzip: bool) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    data = dataset.prepare()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ohif-bench-") as work_dir:
        sides = start_sides(Path(work_dir), data, orthanc_gzip)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                context.add_init_script(INSTRUMENT)
                for side in sides:
                    side.page = context.new_page()
                    capture_accept(side)
                for turn in range(turns + 1):
                    order = sides if turn % 2 == 0 else sides[::-1]
                    for side in order:
                        for other in sides:
                            measure.wait_until_idle(other.orthanc.process.pid)
                        side.openings.append(
                            open_study(side, sides, data.ct_study_uid, dataset.CT_SLICES)
                        )
                        side.page.goto("about:blank")  # the viewer stops before the next side
                fetches = {side.name: direct_fetches(side) for side in sides}
                browser.close()
            results = {"sides": {side.name: summary(side) for side in sides}}
            for side in sides:
                results["sides"][side.name]["fetch"] = fetches[side.name]
        finally:
            for side in sides:
                side.nginx.stop()
            for side in sides:
                side.orthanc.stop()
    results["orthanc_gzip"] = orthanc_gzip
    results["machine"] = {
        "cpus": os.cpu_count(),
        "load_average": [load_before, os.getloadavg()[0]],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5, help="measured openings per side")
    parser.add_argument(
        "--orthanc-gzip",
        action="store_true",
        help="let the browser's Accept-Encoding reach Orthanc (which then gzips every frame)",
    )
    args = parser.parse_args(argv)
    results = run(args.turns, args.orthanc_gzip)
    path = RESULTS.with_stem("ohif-orthanc-gzip") if args.orthanc_gzip else RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    print_table(results)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
