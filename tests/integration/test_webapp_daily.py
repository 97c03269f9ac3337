"""Daily use of the DICOMweb client web application, in headless Chromium: jobs in sight with
their instance counts, one job per click, jobs and server kept over a reload, failed jobs with
their reason and Resubmit, server editing that keeps settings, the Send tab beyond 200 studies,
the phone layout, and screenshots of every screen at desktop (1366x800) and phone (390x844)
sizes in tests/artifacts/webapp/screens/ (the path is printed).
"""

# The module-scoped fixtures of test_webapp_browser are imported: pytest finds them by name.
# ruff: noqa: F811
from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from pydicom.uid import generate_uid

from tests.harness import Orthanc
from tests.integration.test_webapp_browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    CLIENT,
    browser,
    local,
    local_study,
    make_study,
    open_client,
    page,
    pytestmark,
    remote,
    search,
    searched_at_size,
    study_row,
    wait_for,
    wait_job,
)

SCREENS = ARTIFACTS / "screens"
SIZES = {"desktop": (1366, 800), "phone": (390, 844)}
LOCAL_STUDIES = 205  # the Send tab used to stop at 200, silently


@pytest.fixture(scope="module")
def daily(remote: Orthanc, local: Orthanc, test_files: dict[str, Path]) -> dict[str, Any]:
    tag = generate_uid()[-6:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    studies = {
        "six": make_study(remote, test_files["ct"], f"DAYSIX-{tag}", count=6),
        "reload": make_study(remote, test_files["mr"], f"DAYRELOAD-{tag}"),
        "screens": make_study(remote, test_files["ct"], f"DAYSCREEN-{tag}", count=2),
    }
    for number in range(LOCAL_STUDIES):
        make_study(local, test_files["mr"], f"DAYLOCAL-{number:03}-{tag}")
    return {"tag": tag, **studies}


@pytest.fixture(scope="module")
def guarded_orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """An Orthanc that wants a password: a server definition pointing at it needs its own."""
    overrides = {"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "secret"}}
    instance = Orthanc(tmp_path_factory.mktemp("guarded"), overrides)
    instance.session.auth = ("alice", "secret")
    yield instance.start()
    instance.stop()


def retrieve_jobs(orthanc: Orthanc) -> list[dict[str, Any]]:
    jobs = orthanc.get("/jobs?expand").json()
    return [job for job in jobs if job["Type"] == "DicomWebWadoRetrieveClient"]


def in_viewport(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]


# --- jobs ------------------------------------------------------------------------------------


def test_retrieve_is_in_sight_counts_instances_and_starts_once(
    page: Any, local: Orthanc, daily: dict
) -> None:
    before = len(retrieve_jobs(local))
    open_client(page, local)
    search(page, PatientID=f"DAYSIX-{daily['tag']}")
    # A long page: the job must show up in the window, not below the fold.
    page.evaluate("document.querySelector('main').style.paddingBottom = '3000px'")
    study_row(page, daily["six"]["Study"]).get_by_role("button", name="Retrieve").dblclick()
    page.locator("#jobs li.job").first.wait_for()
    assert in_viewport(page, "#jobs li.job")
    job = wait_job(page)
    assert job.locator(".job-counts").inner_text() == "6 of 6 instances"
    assert job.locator("progress").get_attribute("value") == "100"
    assert page.locator("#jobs li.job").count() == 1
    assert len(retrieve_jobs(local)) == before + 1


class HeldRemote:
    """A relay to the remote that holds WADO-RS retrieves until released, or fails them (503):
    jobs that stay running, or fail, for as long as a test needs."""

    def __init__(self, target: str) -> None:
        self.released = threading.Event()
        self.failing = False
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if RETRIEVE_PATH.search(self.path):
                    relay.released.wait(60)
                    if relay.failing:
                        self.send_error(503)
                        return
                accept = {"Accept": self.headers.get("Accept", "*/*")}
                answer = requests.get(target + self.path, headers=accept, timeout=60)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", ""))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


RETRIEVE_PATH = re.compile(r"/studies/[^/?]+$")


@pytest.fixture
def held(remote: Orthanc, local: Orthanc) -> Iterator[HeldRemote]:
    relay = HeldRemote(remote.url)
    assert local.put("/dicom-web/servers/held", json={"Url": relay.url}).status_code == 200
    yield relay
    relay.close()
    local.delete("/dicom-web/servers/held")


def test_a_running_job_disables_its_button_also_after_a_reload(
    page: Any, local: Orthanc, daily: dict, held: HeldRemote
) -> None:
    study = daily["reload"]["Study"]
    open_client(page, local, server="held")
    search(page, PatientID=f"DAYRELOAD-{daily['tag']}")
    button = study_row(page, study).get_by_role("button", name="Retrieve")
    button.click()
    job = page.locator("#jobs li.job").first
    job.locator(".job-state", has_text="Running").wait_for()
    assert button.is_disabled()
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#server").input_value() == "held"  # the chosen server is kept
    label = f'Retrieve study "Study of DAYRELOAD-{daily["tag"]}" from held'
    assert job.locator(".job-label").inner_text() == label
    assert job.locator(".job-state").inner_text() == "Running"
    search(page, PatientID=f"DAYRELOAD-{daily['tag']}")
    assert button.is_disabled()
    page.shot("running-after-reload")
    held.released.set()
    job.locator(".job-state", has_text="Success").wait_for()
    page.wait_for_function("b => !b.disabled", arg=button.element_handle())
    assert local_study(local, study) is not None


def test_a_failed_job_tells_why_and_can_be_resubmitted(
    page: Any, local: Orthanc, daily: dict, held: HeldRemote
) -> None:
    held.failing = True
    held.released.set()
    open_client(page, local, server="held")
    search(page, PatientID=f"DAYSIX-{daily['tag']}")
    study_row(page, daily["six"]["Study"]).get_by_role("button", name="Retrieve").click()
    job = wait_job(page, "Failure")
    assert job.locator(".job-reason").inner_text() == (
        'The DICOMweb server "held" failed with an internal error (HTTP 503).'
    )
    held.failing = False
    job.get_by_role("button", name="Resubmit").click()
    job.locator(".job-state", has_text="Success").wait_for()
    assert job.locator(".job-counts").inner_text() == "6 of 6 instances"
    assert job.locator(".job-reason").count() == 0
    page.shot("resubmitted")


# --- servers ---------------------------------------------------------------------------------


def test_editing_a_server_keeps_what_was_not_changed_and_renames_it(
    page: Any, local: Orthanc, guarded_orthanc: Orthanc
) -> None:
    definition = {
        "Url": guarded_orthanc.url + "/dicom-web/",
        "Username": "alice",
        "Password": "secret",
        "HttpHeaders": {"X-Site": "north"},
        "Timeout": 30,
    }
    assert local.put("/dicom-web/servers/guarded", json=definition).status_code == 200
    open_client(page, local)
    page.click("[data-tab=servers]")
    page.locator("#servers-table tr[data-name=guarded]").get_by_role("button", name="Edit").click()
    form = page.locator("#server-form")
    assert form.locator("[name=Username]").input_value() == "alice"
    assert form.locator("[name=Password]").input_value() == ""
    assert form.locator("[name=Password]").get_attribute("placeholder") == "unchanged"
    assert "X-Site" in page.inner_text("#server-kept")
    page.shot("editing")
    form.locator("[name=Name]").fill("guarded-renamed")
    form.locator("[name=HasDelete]").check()
    page.click("#server-save")
    renamed = page.locator("#servers-table tr[data-name=guarded-renamed]")
    renamed.wait_for()
    assert page.locator("#servers-table tr[data-name=guarded]").count() == 0
    saved = local.get("/dicom-web/servers?expand").json()
    assert "guarded" not in saved
    kept = saved["guarded-renamed"]
    assert (kept["Username"], kept["Timeout"], kept["HasDelete"]) == ("alice", 30, "1")
    assert list(kept["HttpHeaders"]) == ["X-Site"]
    # The password was kept too: the guarded Orthanc still lets the renamed server in.
    renamed.get_by_role("button", name="Test").click()
    page.locator("#notice", has_text='"guarded-renamed" answers QIDO-RS').wait_for()
    local.delete("/dicom-web/servers/guarded-renamed")


def test_a_server_url_must_be_http_or_https(page: Any, local: Orthanc) -> None:
    open_client(page, local)
    page.click("[data-tab=servers]")
    form = page.locator("#server-form")
    form.locator("[name=Name]").fill("noscheme")
    form.locator("[name=Url]").fill("pacs:8042/dicom-web/")
    page.click("#server-save")
    assert form.locator("[name=Url]").evaluate("input => !input.validity.valid")
    assert "noscheme" not in local.get("/dicom-web/servers").json()


def test_without_servers_the_page_says_where_to_add_one(
    page: Any, orthanc_factory: Callable[..., Orthanc]
) -> None:
    # An Orthanc of its own: other tests add servers to the shared one.
    orthanc = orthanc_factory()
    page.goto(orthanc.url + CLIENT)
    page.wait_for_selector("body[data-ready=true]")
    notice = page.inner_text("#notice")
    assert "DicomWeb.Servers" in notice and "ServersInDatabase" in notice
    assert 'add one in the "Servers" tab' not in notice


# --- Send tab --------------------------------------------------------------------------------


def test_send_tab_pages_through_every_study_with_a_total(
    page: Any, local: Orthanc, daily: dict
) -> None:
    open_client(page, local)
    page.click("[data-tab=send]")
    page.fill("#local-form [name=PatientID]", f"DAYLOCAL-*-{daily['tag']}")
    page.click("#local-search-button")
    page.locator("#local-table tbody tr").first.wait_for()
    assert page.inner_text("#local-count") == f"1\u201320 of {LOCAL_STUDIES} studies"
    top = page.locator("#local-panel .pager-top")
    assert top.locator(".page").inner_text() == "Page 1 of 11"
    page.locator("#local-table tbody input[type=checkbox]").first.check()
    top.locator(".next").click()
    page.locator("#local-table tbody input[type=checkbox]").first.check()
    assert page.inner_text("#send-button") == "Send 2 studies to remote"
    for _ in range(9):
        page.locator("#local-panel .pager-bottom .next").click()
    assert page.locator("#local-table tbody tr").count() == LOCAL_STUDIES - 200
    page.shot("last-page")
    page.check("#local-all")
    assert page.inner_text("#send-button") == f"Send {LOCAL_STUDIES} studies to remote"


# --- phone layout and screenshots ------------------------------------------------------------


def overflowing(page: Any) -> list[str]:
    """Visible elements that stick out of the window on the right."""
    return page.evaluate(
        """() => [...document.querySelectorAll('main *, header *')]
            .filter((e) => e.offsetParent !== null)
            .filter((e) => e.getBoundingClientRect().right > innerWidth + 1)
            .map((e) => e.tagName + (e.id ? '#' + e.id : '') + ' ' + e.textContent.slice(0, 30))"""
    )


def test_phone_width_shows_cards_without_sideways_scrolling(
    browser: Any, local: Orthanc, daily: dict
) -> None:
    with searched_at_size(browser, local, 390, 844, f"DAYSCREEN-{daily['tag']}") as page:
        row = page.locator(f"#studies-table tr[data-uid='{daily['screens']['Study']}']")
        row.wait_for()
        row.get_by_role("button", name="Series").click()
        page.locator("#series-table tbody tr").first.wait_for()
        page.screenshot(path=str(ARTIFACTS / "phone-cards.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        assert overflowing(page) == []
        # Cards: each value carries its column's name, and words wrap whole.
        name = row.locator("td[data-label='Patient name']")
        assert name.evaluate("td => getComputedStyle(td, '::before').content") == '"Patient name"'
        assert name.evaluate("td => getComputedStyle(td).wordBreak") == "normal"
        assert name.evaluate("td => getComputedStyle(td).overflowWrap") != "anywhere"


SCREEN_STEPS = ("search", "series-preview", "details", "send", "servers", "jobs")


def take_screens(page: Any, local: Orthanc, daily: dict, size: str) -> list[Path]:
    taken = []

    def shot(name: str) -> None:
        path = SCREENS / f"{size}-{name}.png"
        page.screenshot(path=str(path), full_page=False)
        taken.append(path)

    page.goto(local.url + CLIENT)
    page.wait_for_selector("body[data-ready=true]")
    page.select_option("#server", "remote")
    page.fill("#search-form [name=PatientName]", "day")
    page.click("#search-button")
    page.locator("#studies-table tbody tr").first.wait_for()
    shot("search")
    row = page.locator(f"#studies-table tr[data-uid='{daily['screens']['Study']}']")
    row.get_by_role("button", name="Series").click()
    page.locator("#series-table tbody tr").first.get_by_role("button", name="Preview").click()
    page.wait_for_function("document.querySelector('#preview-image').naturalWidth > 0")
    shot("series-preview")
    # Every column, actions included, fits: no table scrolls sideways.
    assert page.evaluate(
        "[...document.querySelectorAll('.table-wrap')].every(w => w.scrollWidth <= w.clientWidth)"
    )
    row.get_by_role("button", name="Details").click()
    shot("details")
    page.locator("#details-dialog").get_by_role("button", name="Close").click()
    page.click("[data-tab=send]")
    page.click("#local-search-button")
    page.locator("#local-table tbody tr").first.wait_for()
    shot("send")
    page.click("[data-tab=servers]")
    shot("servers")
    page.click("[data-tab=search]")
    row.get_by_role("button", name="Retrieve").click()
    job = page.locator("#jobs li.job").first
    job.locator(".job-state", has_text=re.compile("Success|Failure")).wait_for()
    shot("jobs")
    return taken


@pytest.mark.parametrize("size", list(SIZES))
def test_screens_at_desktop_and_phone_sizes(
    browser: Any, local: Orthanc, daily: dict, size: str
) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        taken = take_screens(page, local, daily, size)
        print(f"\nScreenshots ({width}x{height}) in {SCREENS}:", *[p.name for p in taken])
        assert [p.name for p in taken] == [f"{size}-{step}.png" for step in SCREEN_STEPS]
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        assert not errors, errors
    finally:
        context.close()


def test_jobs_started_elsewhere_are_shown_when_the_page_opens(
    page: Any, local: Orthanc, daily: dict
) -> None:
    body = {"Resources": [{"Study": daily["screens"]["Study"]}], "Synchronous": True}
    assert local.post("/dicom-web/servers/remote/retrieve", json=body).status_code == 200
    open_client(page, local)
    # Only finished jobs: listed, but folded so that they do not take the screen.
    assert page.locator("#jobs-panel details").get_attribute("open") is None
    job = page.locator("#jobs li.job").first
    assert job.locator(".job-state").text_content() == "Success"
    assert job.locator(".job-counts").text_content() == "2 of 2 instances"
    wait_for(lambda: local_study(local, daily["screens"]["Study"]))
