"""The DICOMweb client web application and the Orthanc Explorer buttons, in headless Chromium.

A REMOTE Orthanc runs the official C++ plugin with data; the LOCAL Orthanc runs this plugin with
the remote configured. Screenshots of every step go to tests/artifacts/webapp/ (printed), and
`test_screens_at_desktop_and_phone_sizes` takes one of each screen at 1366x800 and 390x844.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from tests.harness import REPO, Orthanc, free_port, orthanc_available
from tests.helpers import derived, store, wait_for

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts" / "webapp"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLIENT = "/dicom-web/app/client/index.html"
TIMEOUT_MS = 30_000
PAGE_SIZE = 20

pytestmark = [
    pytest.mark.browser,
    pytest.mark.official,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not orthanc_available(official=True), reason="no official plugin"),
]


# --- data ----------------------------------------------------------------------------------


def patient_copy(
    source: Path, patient: str, study: str, series: str, number: int, **attributes: Any
) -> bytes:
    """A copy of a pydicom test file in our own patient / study / series, with a new SOP UID."""
    return derived(
        source,
        study,
        series,
        PatientName=patient.replace("-", "^"),
        PatientID=patient,
        InstanceNumber=number,
        StudyDescription=f"Study of {patient}",
        SeriesDescription=f"Series of {patient}",
        AccessionNumber=patient[-8:],
        **attributes,
    )


SORTED_STUDIES = {"20210615": ("ct", "mr"), "20191231": ("ct",), "20240301": ("mr",)}
LOCAL_STUDIES = 205  # more than the 200 the Send tab used to stop at, silently


def sort_study(orthanc: Orthanc, sources: list[Path], patient: str, date: str) -> None:
    """A study of the given date, one series per source file (so several modalities)."""
    study = generate_uid()
    for number, source in enumerate(sources, start=1):
        copy = patient_copy(source, patient, study, generate_uid(), number, StudyDate=date)
        store(orthanc, [copy])


def make_study(orthanc: Orthanc, source: Path, patient: str, count: int = 1) -> dict[str, str]:
    study, series = generate_uid(), generate_uid()
    copies = [patient_copy(source, patient, study, series, i + 1) for i in range(count)]
    answers = store(orthanc, copies)
    return {"Study": study, "Series": series, "OrthancStudy": answers[0]["ParentStudy"]}


def local_study(orthanc: Orthanc, study_uid: str) -> str | None:
    found = orthanc.post(
        "/tools/find", json={"Level": "Study", "Query": {"StudyInstanceUID": study_uid}}
    ).json()
    return found[0] if found else None


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    instance = Orthanc(tmp_path_factory.mktemp("remote"), official=True).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, remote: Orthanc) -> Iterator[Orthanc]:
    servers = {
        "remote": {"Url": remote.url + "/dicom-web/", "HasDelete": True},
        "down": [f"http://127.0.0.1:{free_port()}/dicom-web/"],
    }
    # EnableDelete: the client deletes through this plugin's own server-side DELETE too.
    overrides = {"DicomWeb": {"ServersInDatabase": True, "Servers": servers, "EnableDelete": True}}
    instance = Orthanc(tmp_path_factory.mktemp("local"), overrides)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def data(remote: Orthanc, local: Orthanc, test_files: dict[str, Path]) -> dict[str, Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tag = generate_uid()[-6:]
    studies = {
        "ct": make_study(remote, test_files["ct"], f"WEBCT-{tag}", count=3),
        "retrieve": make_study(remote, test_files["mr"], f"WEBGET-{tag}"),
        "multiframe": make_study(remote, test_files["multiframe_rgb"], f"WEBMF-{tag}"),
        "send": make_study(local, test_files["ct"], f"WEBSEND-{tag}", count=2),
        "explorer": make_study(local, test_files["mr"], f"WEBOE-{tag}"),
    }
    for number in range(PAGE_SIZE + 2):
        make_study(remote, test_files["mr"], f"WEBPAGE-{number:02}-{tag}")
    for index, (date, sources) in enumerate(SORTED_STUDIES.items()):
        sort_study(remote, [test_files[s] for s in sources], f"WEBSORT-{tag}-{index}", date)
    for number in range(LOCAL_STUDIES):
        make_study(local, test_files["ct"], f"WEBLOCAL-{number:03}-{tag}")
    return {"tag": tag, **studies}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.shot = lambda step: page.screenshot(  # type: ignore[attr-defined]
        path=str(ARTIFACTS / f"{request.node.name}-{step}.png"), full_page=True
    )
    yield page
    page.shot("end")
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def open_client(page: Any, local: Orthanc, server: str = "remote") -> None:
    page.goto(local.url + CLIENT)
    page.wait_for_selector("body[data-ready=true]")
    page.select_option("#server", server)
    page.shot("opened")


def search(page: Any, **fields: str) -> None:
    page.click("[data-tab=search]")
    for name, value in fields.items():
        page.fill(f"#search-form [name={name}]", value)
    page.click("#search-button")
    page.wait_for_selector("#studies-panel:not([hidden])")
    page.shot("searched")


def study_row(page: Any, study_uid: str) -> Any:
    row = page.locator(f"#studies-table tr[data-uid='{study_uid}']")
    row.wait_for()
    return row


def wait_job(page: Any, state: str = "Success") -> Any:
    job = page.locator("#jobs li.job").first
    job.locator(".job-state", has_text=re.compile("Success|Failure")).wait_for()
    page.shot("job-finished")
    assert job.locator(".job-state").inner_text() == state
    return job


# --- tests ---------------------------------------------------------------------------------


def test_search_shows_studies_and_their_details(page: Any, local: Orthanc, data: dict) -> None:
    open_client(page, local)
    search(page, PatientID=f"WEBCT-{data['tag']}")
    row = study_row(page, data["ct"]["Study"])
    assert f"WEBCT-{data['tag']}" in row.inner_text()
    assert f"Study of WEBCT-{data['tag']}" in row.inner_text()
    assert page.locator("#studies-table tbody tr").count() == 1
    row.get_by_role("button", name="Details").click()
    details = page.locator("#details-dialog")
    details.wait_for()
    page.shot("details")
    assert data["ct"]["Study"] in details.inner_text()
    assert "PatientName" in details.inner_text()
    details.get_by_role("button", name="Close").click()

    search(page, StudyDateFrom="1990-01-01", StudyDateTo="2030-12-31")
    study_row(page, data["ct"]["Study"])
    search(page, PatientID="", StudyDateFrom="", StudyDateTo="", AccessionNumber="NO-SUCH-ONE")
    assert page.locator("#studies-count").inner_text() == "No study found"


def test_search_by_name_and_description(page: Any, local: Orthanc, data: dict) -> None:
    # Against the official plugin 1.7, which does not percent-decode queries: the page's
    # wildcards must reach it as they are, and so must a space or "^" in the words typed.
    open_client(page, local)
    search(page, PatientName=f"webct^{data['tag']}")
    study_row(page, data["ct"]["Study"])
    assert page.locator("#studies-table tbody tr").count() == 1
    search(page, PatientName="", StudyDescription=f"of WEBGET-{data['tag']}")
    study_row(page, data["retrieve"]["Study"])
    assert page.locator("#studies-table tbody tr").count() == 1


def test_large_answers_are_paginated_with_a_total_and_pagers_above_and_below(
    page: Any, local: Orthanc, data: dict
) -> None:
    open_client(page, local)
    search(page, PatientID=f"WEBPAGE-*{data['tag']}")
    rows = page.locator("#studies-table tbody tr")
    assert rows.count() == PAGE_SIZE
    assert page.inner_text("#studies-count") == f"1\u2013{PAGE_SIZE} of {PAGE_SIZE + 2} studies"
    top, bottom = (page.locator(f"#studies-panel .pager-{where}") for where in ("top", "bottom"))
    for pager in (top, bottom):
        assert pager.locator(".page").inner_text() == "Page 1 of 2"
        assert pager.locator(".next").is_enabled()
        assert pager.locator(".previous").is_disabled()
    top.locator(".next").click()
    bottom.locator(".page", has_text="Page 2 of 2").wait_for()
    page.shot("page-2")
    assert rows.count() == 2
    assert (
        page.inner_text("#studies-count") == f"{PAGE_SIZE + 1}\u2013{PAGE_SIZE + 2} of 22 studies"
    )
    assert bottom.locator(".next").is_disabled()
    bottom.locator(".previous").click()
    top.locator(".page", has_text="Page 1 of 2").wait_for()
    assert rows.count() == PAGE_SIZE


def test_studies_are_sorted_newest_first_and_by_any_column(
    page: Any, local: Orthanc, data: dict
) -> None:
    open_client(page, local)
    search(page, PatientID=f"WEBSORT-{data['tag']}-*")
    dates = page.locator("#studies-table tbody td[data-label='Study date']")
    assert dates.all_inner_texts() == ["2024-03-01", "2021-06-15", "2019-12-31"]
    header = page.locator("#studies-table th[data-key=StudyDate]")
    assert header.get_attribute("aria-sort") == "descending"
    header.get_by_role("button").click()
    assert dates.all_inner_texts() == ["2019-12-31", "2021-06-15", "2024-03-01"]
    page.locator("#studies-table th[data-key=PatientID]").get_by_role("button").click()
    ids = page.locator("#studies-table tbody td[data-label='Patient ID']").all_inner_texts()
    assert ids == sorted(ids)
    # Readable values: "FAMILY, Given" and several modalities separated by commas.
    row = page.locator("#studies-table tbody tr", has_text="2021-06-15")
    name = row.locator("td[data-label='Patient name']").inner_text()
    assert name == f"WEBSORT, {data['tag']} 0"
    assert row.locator("td[data-label='Modalities']").inner_text() in ("CT, MR", "MR, CT")


def test_series_preview_with_next_and_previous(page: Any, local: Orthanc, data: dict) -> None:
    open_client(page, local)
    search(page, PatientID=f"WEBCT-{data['tag']}")
    study_row(page, data["ct"]["Study"]).get_by_role("button", name="Series").click()
    series = page.locator(f"#series-table tr[data-uid='{data['ct']['Series']}']")
    series.wait_for()
    page.shot("series")
    series.get_by_role("button", name="Preview").click()
    position = page.locator("#preview-position")
    position.filter(has_text="1 / 3").wait_for()
    image_loaded = "img => img.complete && img.naturalWidth > 0"
    page.wait_for_function(f"({image_loaded})(document.querySelector('#preview-image'))")
    page.shot("preview-1")
    first = page.locator("#preview-image").get_attribute("src")
    page.click("#preview-next")
    position.filter(has_text="2 / 3").wait_for()
    page.wait_for_function(
        f"src => {{ const i = document.querySelector('#preview-image');"
        f" return i.src !== src && ({image_loaded})(i); }}",
        arg=first,
    )
    page.shot("preview-2")
    page.click("#preview-previous")
    position.filter(has_text="1 / 3").wait_for()
    assert page.locator("#preview-previous").is_disabled()


def test_preview_walks_through_the_frames_of_a_multiframe_instance(
    page: Any, local: Orthanc, data: dict
) -> None:
    study = data["multiframe"]
    open_client(page, local)
    search(page, PatientID=f"WEBMF-{data['tag']}")
    study_row(page, study["Study"]).get_by_role("button", name="Series").click()
    series = page.locator(f"#series-table tr[data-uid='{study['Series']}']")
    series.get_by_role("button", name="Preview").click()
    page.locator("#preview-position", has_text="1 / 2").wait_for()
    page.click("#preview-next")
    page.locator("#preview-position", has_text="2 / 2").wait_for()
    page.wait_for_function("document.querySelector('#preview-image').naturalWidth > 0")
    page.shot("frame-2")
    assert page.locator("#preview-message").inner_text() == ""
    assert page.locator("#preview-next").is_disabled()


def test_retrieve_a_study_into_this_orthanc(page: Any, local: Orthanc, data: dict) -> None:
    study = data["retrieve"]["Study"]
    assert local_study(local, study) is None
    open_client(page, local)
    search(page, PatientID=f"WEBGET-{data['tag']}")
    study_row(page, study).get_by_role("button", name="Retrieve").click()
    job = wait_job(page)
    link = job.locator("a.open-local")
    link.wait_for()
    orthanc_id = local_study(local, study)
    assert orthanc_id is not None
    assert link.get_attribute("href").endswith(f"app/explorer.html#study?uuid={orthanc_id}")


def test_retrieve_a_series(page: Any, local: Orthanc, data: dict) -> None:
    open_client(page, local)
    search(page, PatientID=f"WEBCT-{data['tag']}")
    study_row(page, data["ct"]["Study"]).get_by_role("button", name="Series").click()
    series = page.locator(f"#series-table tr[data-uid='{data['ct']['Series']}']")
    series.get_by_role("button", name="Retrieve").click()
    wait_job(page).locator("a.open-local").wait_for()
    found = local.post("/tools/lookup", data=data["ct"]["Series"]).json()
    assert [r["Type"] for r in found] == ["Series"]
    assert len(local.get(f"/series/{found[0]['ID']}").json()["Instances"]) == 3


def test_delete_asks_for_confirmation_and_explains_a_refusal(
    page: Any, local: Orthanc, remote: Orthanc, data: dict
) -> None:
    # The official plugin has no DELETE: the remote's refusal must be told in plain words.
    study = data["ct"]["Study"]
    open_client(page, local)
    search(page, PatientID=f"WEBCT-{data['tag']}")
    study_row(page, study).get_by_role("button", name="Delete").click()
    page.locator("#confirm-dialog").wait_for()
    page.shot("confirm")
    page.click("#confirm-cancel")
    assert page.locator("#error").is_hidden()
    assert page.locator("#notice").is_hidden()
    study_row(page, study).get_by_role("button", name="Delete").click()
    page.click("#confirm-ok")
    page.locator("#error").wait_for()
    page.shot("refused")
    assert page.inner_text("#error-text") == (
        'The DICOMweb server "remote" does not support this operation (HTTP 405).'
    )
    assert local_study(remote, study) is not None


def test_delete_a_study_on_a_server_that_allows_it(
    page: Any, local: Orthanc, test_files: dict[str, Path]
) -> None:
    patient = f"WEBDEL-{generate_uid()[-6:]}"
    study = make_study(local, test_files["mr"], patient)
    definition = {"Url": local.url + "/dicom-web/", "HasDelete": True}
    assert local.put("/dicom-web/servers/deleting", json=definition).status_code == 200
    open_client(page, local, server="deleting")
    search(page, PatientID=patient)
    study_row(page, study["Study"]).get_by_role("button", name="Delete").click()
    page.click("#confirm-ok")
    page.locator("#notice", has_text="Deleted").wait_for()
    assert local_study(local, study["Study"]) is None


def test_unreachable_server_is_told_in_plain_words(page: Any, local: Orthanc) -> None:
    open_client(page, local, server="down")
    page.click("#search-button")
    page.locator("#error").wait_for()
    page.shot("down")
    assert page.inner_text("#error-text") == (
        'The DICOMweb server "down" cannot be reached: is it running, and is its URL right?'
    )
    assert page.locator("#studies-panel").is_hidden()


def test_send_local_studies_to_the_server(
    page: Any, local: Orthanc, remote: Orthanc, data: dict
) -> None:
    study = data["send"]["Study"]
    open_client(page, local)
    page.click("[data-tab=send]")
    page.fill("#local-form [name=PatientID]", f"WEBSEND-{data['tag']}")
    page.click("#local-search-button")
    page.locator("#local-table tbody tr").first.wait_for()
    assert page.locator("#local-table tbody tr").count() == 1
    assert page.locator("#send-button").is_disabled()
    page.check(f"#local-table input[value='{study}']")
    assert page.inner_text("#send-button") == "Send 1 study to remote"
    page.shot("picked")
    page.click("#send-button")
    job = wait_job(page)
    assert job.locator(".job-counts").inner_text() == "2 of 2 instances"
    assert local_study(remote, study) is not None


def test_servers_can_be_added_tested_and_removed(
    page: Any, local: Orthanc, remote: Orthanc
) -> None:
    open_client(page, local)
    page.click("[data-tab=servers]")
    form = page.locator("#server-form")
    form.locator("[name=Name]").fill("added")
    form.locator("[name=Url]").fill(remote.url + "/dicom-web/")
    form.locator("[name=HasDelete]").check()
    page.click("#server-save")
    row = page.locator("#servers-table tr[data-name=added]")
    row.wait_for()
    page.shot("added")
    assert "yes" in row.inner_text()
    assert "added" in local.get("/dicom-web/servers").json()
    assert page.locator("#server option[value=added]").count() == 1
    row.get_by_role("button", name="Test").click()
    page.locator("#notice", has_text='"added" answers QIDO-RS').wait_for()
    page.locator("#servers-table tr[data-name=down]").get_by_role("button", name="Test").click()
    page.locator("#error", has_text="cannot be reached").wait_for()
    page.shot("tested")
    row.get_by_role("button", name="Remove").click()
    page.click("#confirm-ok")
    row.wait_for(state="detached")
    assert "added" not in local.get("/dicom-web/servers").json()


@contextmanager
def searched_at_size(
    browser: Any, local: Orthanc, width: int, height: int, patient_id: str
) -> Iterator[Any]:
    """A client page in a viewport of this size, its search of the remote for a PatientID
    sent; the browser context is closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(local.url + CLIENT)
        page.wait_for_selector("body[data-ready=true]")
        page.select_option("#server", "remote")
        page.fill("#search-form [name=PatientID]", patient_id)
        page.click("#search-button")
        yield page
    finally:
        context.close()


def test_tablet_width_keeps_the_page_usable(browser: Any, local: Orthanc, data: dict) -> None:
    with searched_at_size(browser, local, 768, 1024, f"WEBCT-{data['tag']}") as page:
        page.locator(f"#studies-table tr[data-uid='{data['ct']['Study']}']").wait_for()
        page.screenshot(path=str(ARTIFACTS / "tablet.png"), full_page=True)
        # The page itself never scrolls sideways; only the table does, inside its frame.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        box = page.get_by_role("button", name="Retrieve").first.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 768


def test_orthanc_explorer_buttons(page: Any, local: Orthanc, remote: Orthanc, data: dict) -> None:
    page.goto(local.url + "/app/explorer.html")
    button = page.locator("#open-dicomweb-client-button")
    button.wait_for()
    page.shot("home")
    with page.context.expect_page() as opened:
        button.click()
    client = opened.value
    client.wait_for_selector("body[data-ready=true]")
    assert client.url.endswith(CLIENT)
    client.close()

    study = data["explorer"]
    page.goto(local.url + f"/app/explorer.html#study?uuid={study['OrthancStudy']}")
    send = page.locator("#dicomweb-send-study")
    send.wait_for()
    page.shot("study-page")
    send.click()
    page.locator("#dicomweb-servers li[name=remote] a").click()
    page.wait_for_url(re.compile(r"#job\?uuid="))
    page.shot("job-page")
    wait_for(lambda: local_study(remote, study["Study"]))
