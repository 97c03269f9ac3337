"""The OHIF Viewer v3 in front of this plugin, in headless Chromium (WebGL through SwiftShader).

nginx serves the viewer fetched from npm's @ohif/app and proxies /dicom-web/ to an Orthanc
holding a CT series, an MR, a multi-frame loop and a study in compressed syntaxes
(samples/ohif/, tests/integration/ohif_data.py). Images are checked on screenshots' pixels.
Every response OHIF gets is recorded: none may be 4xx or 5xx. Screenshots and the list of
requests go to tests/artifacts/ohif/.
"""

from __future__ import annotations

import io
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from samples.ohif.viewer import NGINX, Nginx, fetch_viewer
from tests.harness import REPO, Orthanc, free_port, orthanc_available
from tests.integration.ohif_data import Study, make_studies

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts" / "ohif"
# WebGL through ANGLE's software Vulkan (SwiftShader): cornerstone draws without a GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# Marks OHIF's first-use tour and its investigational-use banner as seen: both cover the images.
SEEN_BEFORE = """
localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']));
sessionStorage.setItem('investigationalUseDialog', 'hidden');
"""
TIMEOUT_MS = 30_000
UID = re.compile(r"/\d+(?:\.\d+)+")
FRAME_LIST = re.compile(r"/frames/[\d,]+")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not Path(NGINX).exists(), reason="Debian's nginx is not installed"),
    pytest.mark.skipif(not orthanc_available(), reason="no Orthanc with the Python plugin"),
]


# --- what OHIF asked, and what it got --------------------------------------------------------


class Recorder:
    """Every response the pages get, and every request that got none."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, str, str]] = []
        self.failures: list[tuple[str, str]] = []

    def attach(self, page: Any) -> None:
        page.on("response", lambda r: self.responses.append((r.status, r.request.method, r.url)))
        page.on("requestfailed", self._failed)

    def _failed(self, request: Any) -> None:
        # A navigation cancels the requests still in flight: that is the browser, not a server.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.failures.append((request.failure, request.url))

    def mark(self) -> int:
        return len(self.responses)

    def errors_since(self, mark: int) -> list[tuple[int, str, str]]:
        return [entry for entry in self.responses[mark:] if entry[0] >= 400]

    def urls_since(self, mark: int, pattern: str) -> list[str]:
        return [url for status, _, url in self.responses[mark:] if re.search(pattern, url)]

    def routes(self) -> Counter[tuple[str, str, int]]:
        """(method, route with {uid} for UIDs and no query, status): how often."""
        counts: Counter[tuple[str, str, int]] = Counter()
        for status, method, url in self.responses:
            path = UID.sub("/{uid}", url.split("?")[0].split("/", 3)[-1])
            path = FRAME_LIST.sub("/frames/{n}", path)
            if path.startswith(("dicom-web", "wado")):
                counts[(method, "/" + path, status)] += 1
        return counts

    def write(self, path: Path) -> None:
        lines = [
            f"{n:5d}  {m} {route} -> {s}" for (m, route, s), n in sorted(self.routes().items())
        ]
        lines += ["", *(f"{s} {m} {url}" for s, m, url in self.responses)]
        lines += ["", *(f"FAILED {why} {url}" for why, url in self.failures)]
        path.write_text("\n".join(lines) + "\n")


def assert_no_http_errors(recorder: Recorder, mark: int) -> None:
    errors = recorder.errors_since(mark)
    assert not errors, "OHIF got errors:\n" + "\n".join(f"{s} {m} {u}" for s, m, u in errors)
    assert not recorder.failures, f"requests without an answer: {recorder.failures}"


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Orthanc, dict]]:
    """An Orthanc of its own (the study list shows everything), loaded with the test studies."""
    orthanc = Orthanc(tmp_path_factory.mktemp("ohif-orthanc")).start()
    made = make_studies()
    for _, files in made.values():
        for data in files:
            orthanc.post("/instances", data=data).raise_for_status()
    yield orthanc, {role: study for role, (study, _) in made.items()}
    orthanc.stop()


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory, studies: tuple) -> Iterator[Nginx]:
    dist = fetch_viewer()
    run = tmp_path_factory.mktemp("ohif-nginx")
    nginx = Nginx(run, f"127.0.0.1:{free_port()}", studies[0].url, dist).start()
    yield nginx
    nginx.stop()


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    recorder.write(ARTIFACTS / "requests.txt")


@pytest.fixture(scope="module")
def page(viewer: Nginx, recorder: Recorder) -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(SEEN_BEFORE)
        page = context.new_page()
        recorder.attach(page)
        page.base = viewer.url  # type: ignore[attr-defined]
        yield page
        browser.close()


@pytest.fixture(autouse=True)
def last_screen(page: Any, request: pytest.FixtureRequest) -> Iterator[None]:
    """What the page showed when each test ended: on a failure, what went wrong."""
    yield
    shot(page, f"end-{request.node.name}")


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


# --- pages and pixels ----------------------------------------------------------------------


def open_study_list(page: Any, query: str = "") -> None:
    page.goto(f"{page.base}/{query}")
    page.locator("tr[data-filter-row]").wait_for()


def study_rows(page: Any, expected: int) -> list[str]:
    """The texts of the study list's rows, once there are `expected` of them."""
    rows = page.locator("tbody tr[aria-selected]")
    wait_until(lambda: rows.count() == expected, f"{expected} rows in the study list")
    return [" ".join(rows.nth(i).inner_text().split()) for i in range(expected)]


def patients(rows: list[str]) -> set[str]:
    """The patient names of study list rows (what comes before the date)."""
    return {re.sub(r" \d\d-\w{3}-\d{4} .*", "", row) for row in rows}


def open_viewer(page: Any, study: Study) -> None:
    page.goto(f"{page.base}/viewer?StudyInstanceUIDs={study.uid}")
    page.locator('[data-cy="viewport-pane"]').wait_for()


def element_pixels(locator: Any) -> np.ndarray:
    """An element's screenshot as RGB pixels (signed, so that differences do not wrap)."""
    png = locator.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def viewport_pixels(page: Any) -> np.ndarray:
    """The middle of the viewport (no overlay text there) as RGB pixels."""
    image = element_pixels(page.locator('[data-cy="viewport-pane"]').first)
    height, width, _ = image.shape
    return image[height // 5 : height * 4 // 5, width // 5 : width * 4 // 5]


def looks_drawn(pixels: np.ndarray) -> bool:
    """An image with structure fills the viewport: lit pixels, and contrast among them."""
    gray = pixels.mean(axis=2)
    return bool((gray > 40).mean() > 0.2 and gray.std() > 20)


def colourful(pixels: np.ndarray) -> float:
    """Share of saturated pixels (colour bars), which a grey image has none of."""
    return float(((pixels.max(axis=2) - pixels.min(axis=2)) > 100).mean())


def differs(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape != b.shape or float(np.abs(a - b).mean()) > 2


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value is not None and value is not False:  # an array of pixels is no truth value
            return value
        time.sleep(0.25)
    raise AssertionError(f"not seen within {timeout} s: {what}")


def wait_for_drawing(page: Any, unlike: np.ndarray | None = None) -> np.ndarray:
    """The viewport's pixels once an image (other than `unlike`) is drawn."""

    def drawn() -> np.ndarray | None:
        pixels = viewport_pixels(page)
        new = unlike is None or differs(pixels, unlike)
        return pixels if looks_drawn(pixels) and new else None

    return wait_until(drawn, "an image drawn in the viewport")


def show_series(page: Any, thumbnail: Any, previous: np.ndarray | None) -> tuple[str, np.ndarray]:
    """Double-click a series' thumbnail; its description and first image once drawn."""
    description = thumbnail.locator('[data-cy="series-description-label"]').inner_text()
    thumbnail.dblclick()
    wait_until(lambda: description in overlay(page, "top-left"), f"series {description} shown")
    return description, wait_for_drawing(page, unlike=previous)


def overlay(page: Any, corner: str) -> str:
    return page.locator(f'[data-cy="viewport-overlay-{corner}"]').first.inner_text()


def image_index(page: Any) -> tuple[int, int]:
    """(position, count) from the overlay's "I:3 (3/16)" or "3/16"."""
    found = re.search(r"(\d+)/(\d+)", overlay(page, "bottom-right"))
    assert found, overlay(page, "bottom-right")
    return int(found[1]), int(found[2])


# --- tests ---------------------------------------------------------------------------------


def test_study_list_shows_studies_with_names_dates_modalities_counts(
    page: Any, studies: tuple, recorder: Recorder
) -> None:
    mark = recorder.mark()
    open_study_list(page)
    rows = study_rows(page, len(studies[1]))
    shot(page, "01-study-list")
    for study in studies[1].values():
        (row,) = [row for row in rows if row.startswith(study.shown_name)]
        date = time.strftime("%d-%b-%Y", time.strptime(study.date, "%Y%m%d"))
        modalities = study.modalities.replace("/", "\\")
        assert f" {date} " in f" {row} ", row
        assert f" {modalities} {study.description} {study.patient_id} {study.instances}" in row
    assert_no_http_errors(recorder, mark)


def test_study_list_filters(page: Any, studies: tuple, recorder: Recorder) -> None:
    by_role = studies[1]
    mark = recorder.mark()
    open_study_list(page)
    study_rows(page, len(by_role))
    # Typed, as a user does: OHIF filters the 4 studies it has (under its page of 101) itself.
    page.locator("tr[data-filter-row] td").first.locator("input").fill("ohif")
    assert patients(study_rows(page, 2)) == {"Ohif, Chest", "Ohif, Head"}
    shot(page, "02-filter-patient-name")
    # From the URL, as a bookmark does: the server filters (ModalitiesInStudy, StudyDate range).
    open_study_list(page, "?modalities=MR")
    assert patients(study_rows(page, 2)) == {"Ohif, Head", "Packed, Pixels"}
    shot(page, "03-filter-modality")
    open_study_list(page, "?startDate=20220101&endDate=20231231")
    assert patients(study_rows(page, 2)) == {"Ohif, Head", "Cine, Loop"}
    shot(page, "04-filter-dates")
    searches = recorder.urls_since(mark, r"/studies\?")
    assert [url for url in searches if "ModalitiesInStudy=MR&" in url], searches
    assert [url for url in searches if url.endswith("StudyDate=20220101-20231231")], searches
    assert_no_http_errors(recorder, mark)


def test_opening_a_study_shows_its_series_with_thumbnails(
    page: Any, studies: tuple, recorder: Recorder
) -> None:
    mark = recorder.mark()
    open_viewer(page, studies[1]["compressed"])
    thumbnails = page.locator('[data-cy="study-browser-thumbnail"]')
    wait_until(lambda: thumbnails.count() == 2, "two series in the study browser")
    labels = page.locator('[data-cy="series-description-label"]').all_inner_texts()
    assert labels == ["Compressed 1", "Compressed 2"]
    images = thumbnails.locator("img")
    wait_until(
        lambda: (
            images.count() == 2
            and all(images.nth(i).evaluate("i => i.naturalWidth") for i in range(2))
        ),
        "both thumbnails loaded",
    )
    shot(page, "05-study-thumbnails")
    pixels = [element_pixels(images.nth(i)) for i in range(2)]
    assert all(p.std() > 20 for p in pixels), "a thumbnail is flat"
    # Series 1 is the grey MR, series 2 the colour bars.
    assert colourful(pixels[0]) < 0.01 < colourful(pixels[1])
    assert len(recorder.urls_since(mark, r"/thumbnail\?")) >= 2
    assert_no_http_errors(recorder, mark)


@pytest.mark.parametrize("role", ["ct", "mr", "cine", "compressed"])
def test_first_image_of_each_series_is_drawn(
    page: Any, studies: tuple, recorder: Recorder, role: str
) -> None:
    study = studies[1][role]
    mark = recorder.mark()
    open_viewer(page, study)
    thumbnails = page.locator('[data-cy="study-browser-thumbnail"]')
    wait_until(lambda: thumbnails.count() > 0, "the study's series")
    previous = None
    for index in range(thumbnails.count()):
        description, pixels = show_series(page, thumbnails.nth(index), previous)
        shot(page, f"06-first-image-{role}-{index + 1}")
        assert image_index(page)[0] == 1
        # The RGB series of the compressed study is drawn in colour; the others in grey.
        assert (colourful(pixels) > 0.1) == (description == "Compressed 2"), description
        previous = pixels
    assert recorder.urls_since(mark, r"/frames/1$")
    assert_no_http_errors(recorder, mark)


def test_scrolling_a_series_loads_further_images(
    page: Any, studies: tuple, recorder: Recorder
) -> None:
    study = studies[1]["ct"]
    mark = recorder.mark()
    open_viewer(page, study)
    first = wait_for_drawing(page)
    assert image_index(page) == (1, study.instances)
    box = page.locator('[data-cy="viewport-pane"]').first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(5):
        page.mouse.wheel(0, 100)
        time.sleep(0.1)
    wait_until(lambda: image_index(page)[0] == 6, "the sixth slice after five wheel steps")
    sixth = wait_for_drawing(page, unlike=first)
    shot(page, "07-scrolled-to-slice-6")
    for _ in range(study.instances):
        page.mouse.wheel(0, 100)
    wait_until(lambda: image_index(page)[0] == study.instances, "the last slice")
    wait_for_drawing(page, unlike=sixth)
    shot(page, "08-scrolled-to-last-slice")
    instances = {url.split("/instances/")[1] for url in recorder.urls_since(mark, r"/frames/1$")}
    assert len(instances) == study.instances
    assert_no_http_errors(recorder, mark)


def test_multiframe_instance_plays(page: Any, studies: tuple, recorder: Recorder) -> None:
    mark = recorder.mark()
    open_viewer(page, studies[1]["cine"])
    first = wait_for_drawing(page)
    position, frames = image_index(page)
    assert (position, frames) == (1, 12)
    play = page.locator('[data-cy="cine-player-play-pause"]')
    play.click()
    seen = {position}
    deadline = time.monotonic() + 20
    while len(seen) < 4 and time.monotonic() < deadline:
        seen.add(image_index(page)[0])
        time.sleep(0.1)
    shot(page, "09-cine-playing")
    assert len(seen) >= 4, f"frames shown while playing: {sorted(seen)}"
    # Paused on another frame than the first, the screenshot is of a known frame.
    for _ in range(10):
        play.click()
        if image_index(page)[0] != 1:
            break
        play.click()  # paused on the first frame again: play on
        time.sleep(0.3)
    wait_for_drawing(page, unlike=first)
    frame_numbers = {url.rsplit("/", 1)[1] for url in recorder.urls_since(mark, r"/frames/\d+$")}
    assert len(frame_numbers) == frames
    assert_no_http_errors(recorder, mark)


def test_the_proxy_stores_and_points_urls_at_the_viewer(viewer: Nginx) -> None:
    """STOW-RS through nginx (OHIF's Upload), and the URLs of answers on the viewer's origin."""
    data = make_studies()["mr"][1][0]
    boundary = "ohif-test-boundary"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    stored = requests.post(
        f"{viewer.url}/dicom-web/studies",
        data=body,
        headers={"Content-Type": content_type, "Accept": "application/dicom+json"},
        timeout=60,
    )
    assert stored.status_code == 200, stored.text
    retrieve_url = stored.json()["00081190"]["Value"][0]
    assert retrieve_url.startswith(f"{viewer.url}/dicom-web/studies/")
    metadata = requests.get(f"{retrieve_url}/metadata", timeout=60)
    assert metadata.status_code == 200
    pixel_data = metadata.json()[0]["7FE00010"]
    assert pixel_data["BulkDataURI"].startswith(f"{viewer.url}/dicom-web/studies/")
    assert requests.get(pixel_data["BulkDataURI"], timeout=60).status_code == 200
