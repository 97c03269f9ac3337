"""The unit tests' fake core (tests/fake_core.py) against a live Orthanc 1.10.1: the same calls
the plugin makes, on the same files, must get the same answers. When the fake drifts from the
core, this fails, and the unit tests built on it are no longer trusted blindly."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pydicom
import pytest

from orthanc_dicomweb.orthanc.core import Core, CoreError
from tests.fake_core import LEVELS, PLURAL, FakeCore
from tests.harness import PYDICOM_FILES, Orthanc, orthanc_available
from tests.helpers import derived
from tests.rest_core import RestCore

pytestmark = pytest.mark.skipif(not orthanc_available(), reason="Orthanc is not installed")

# Explicit, implicit and big endian syntaxes; compressed and multi-frame pixels; sequences,
# private blocks, retired and AT elements, long texts, character sets, an empty PatientID.
FILES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",  # the same instance as MR_small: stored once
    "MR_small_bigendian.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "rtdose.dcm",
    "test-SR.dcm",
    "SC_rgb_rle_2frame.dcm",
    "JPEG2000.dcm",
    "JPEG-lossy.dcm",
    "examples_palette.dcm",
    "../charset_files/chrH31.dcm",
    "../charset_files/chrRuss.dcm",
]
# What differs between two stores of the same file, or with the time.
VOLATILE = {"LastUpdate", "IsStable", "FileUuid", "Uuid", "Date"}


@pytest.fixture(scope="module")
def live_orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """A bare Orthanc (no plugin: the core alone answers), never stable during a test."""
    orthanc = Orthanc(tmp_path_factory.mktemp("contract"), {"Plugins": [], "StableAge": 3600})
    orthanc.start()
    yield orthanc
    orthanc.stop()


@pytest.fixture
def cores(live_orthanc: Orthanc) -> tuple[FakeCore, RestCore]:
    """The fake and the live core, each holding FILES and nothing else."""
    live_orthanc.clear()
    fake, live = FakeCore(), RestCore(live_orthanc.url)
    for name in FILES:
        data = (PYDICOM_FILES / name).read_bytes()
        fake.post("/instances", data)
        live.post("/instances", data)
    return fake, live


def answer(core: Core, method: str, uri: str, body: bytes = b"") -> Any:
    """The core's JSON answer, or the error it raises as (code, status)."""
    try:
        if method == "GET":
            raw = core.get(uri)
        elif method == "POST":
            raw = core.post(uri, body)
        elif method == "PUT":
            raw = core.put(uri, body)
        else:
            core.delete(uri)
            return None
    except CoreError as error:
        return ("error", error.code, error.status)
    return json.loads(raw)


def stable(value: Any) -> Any:
    """An answer without what changes with time or store; lists of ids sorted."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        items = [stable(item) for item in value]
        return sorted(items, key=json.dumps) if all(isinstance(i, str) for i in items) else items
    return value


def same(fake: FakeCore, live: RestCore, method: str, uri: str, body: bytes = b"") -> Any:
    expected = stable(answer(live, method, uri, body))
    assert stable(answer(fake, method, uri, body)) == expected, f"{method} {uri}"
    return expected


def ids(core: Core, level: str) -> list[str]:
    return sorted(json.loads(core.get(f"/{PLURAL[level]}")))


def test_storing_answers_the_same(cores: tuple[FakeCore, RestCore]) -> None:
    fake, live = cores
    for name in ("CT_small.dcm", "MR_small_implicit.dcm"):
        data = (PYDICOM_FILES / name).read_bytes()
        assert same(fake, live, "POST", "/instances", data)["Status"] == "AlreadyStored"
    refused = same(fake, live, "POST", "/instances", b"not a DICOM file")
    assert refused[0] == "error"


def test_every_resource_and_listing_is_the_same(cores: tuple[FakeCore, RestCore]) -> None:
    fake, live = cores
    for level in LEVELS:
        assert ids(fake, level) == ids(live, level)
        same(fake, live, "GET", f"/{PLURAL[level]}?expand")
        for resource_id in ids(live, level):
            same(fake, live, "GET", f"/{PLURAL[level]}/{resource_id}")
    same(fake, live, "GET", "/statistics")


@pytest.mark.parametrize(
    ("level", "related"),
    [
        ("Patient", "studies"),
        ("Study", "series"),
        ("Study", "instances"),
        ("Series", "instances"),
        ("Instance", "series"),
        ("Instance", "study"),
        ("Series", "study"),
    ],
)
def test_related_resources_are_the_same(
    cores: tuple[FakeCore, RestCore], level: str, related: str
) -> None:
    fake, live = cores
    for resource_id in ids(live, level):
        same(fake, live, "GET", f"/{PLURAL[level]}/{resource_id}/{related}")


def normalized_names(tags: Any) -> Any:
    """Tags whose names the fake cannot know left out: DCMTK's private dictionary, and its
    retired set (older than pydicom's: it still calls OtherPatientIDs retired, say)."""
    if isinstance(tags, list):
        return [normalized_names(item) for item in tags]
    if not isinstance(tags, dict):
        return tags
    normalized = {}
    for key, entry in tags.items():
        if isinstance(entry, dict) and "Name" in entry:
            entry = dict(entry, Value=normalized_names(entry["Value"]))
            if "PrivateCreator" in entry or int(key[:4], 16) % 2:
                del entry["Name"]
            else:
                entry["Name"] = entry["Name"].removeprefix("RETIRED_")
        normalized[key] = entry
    return normalized


@pytest.mark.parametrize("form", ["", "?short"])
def test_tags_are_the_same(cores: tuple[FakeCore, RestCore], form: str) -> None:
    fake, live = cores
    for instance in ids(live, "Instance"):
        uri = f"/instances/{instance}/tags{form}"
        assert normalized_names(answer(fake, "GET", uri)) == normalized_names(
            answer(live, "GET", uri)
        ), uri


def metadata(core: Core, uri: str) -> bytes | int:
    """A metadata's value, or the error code when the instance has none."""
    try:
        return core.get(uri)
    except CoreError as error:
        return error.code


def test_files_metadata_and_attachment_information_are_the_same(
    cores: tuple[FakeCore, RestCore],
) -> None:
    fake, live = cores
    for instance in ids(live, "Instance"):
        base = f"/instances/{instance}"
        assert fake.get(base + "/file") == live.get(base + "/file")
        for name in ("TransferSyntax", "SopClassUid", "IndexInSeries"):
            assert metadata(fake, f"{base}/metadata/{name}") == metadata(
                live, f"{base}/metadata/{name}"
            )
        same(fake, live, "GET", base + "/attachments/dicom/info")
        same(fake, live, "GET", base + "/attachments")
        same(fake, live, "GET", base + "/metadata/NoSuchMetadata")


def content(core: Core, uri: str) -> Any:
    """A value's bytes, the list of a sequence's items, or the error code."""
    try:
        raw = core.get(uri)
    except CoreError as error:
        return error.code
    return json.loads(raw) if raw.startswith(b"[") else raw


def test_values_left_out_of_the_tags_are_the_same_bytes(cores: tuple[FakeCore, RestCore]) -> None:
    """`/content/`, which the plugin reads for the values /tags leaves out (too long, binary)."""
    fake, live = cores
    asked = 0
    for instance in ids(live, "Instance"):
        base = f"/instances/{instance}/content"
        for key, entry in json.loads(live.get(f"/instances/{instance}/tags")).items():
            path = key.replace(",", "-")
            uris = []
            if entry["Type"] in ("TooLong", "Null", "Sequence") and key != "7fe0,0010":
                uris.append(f"{base}/{path}")
            if entry["Type"] == "Sequence" and entry["Value"] and entry["Value"][0]:
                inner = next(iter(entry["Value"][0])).replace(",", "-")
                uris += [f"{base}/{path}/0/{inner}", f"{base}/{path}/9/{inner}"]
            for uri in uris:
                assert content(fake, uri) == content(live, uri), uri
            asked += len(uris)
    assert asked > 10


def transcoded(core: Core, instance: str, syntax: str) -> tuple[str, bool] | int:
    """What `/modify` answers to the plugin's transcoding request: the syntax of the file and
    whether the SOP Instance UID was kept, or the error code."""
    request = {"Transcode": syntax, "Keep": ["SOPInstanceUID"], "Force": True}
    try:
        answer = core.post(f"/instances/{instance}/modify", json.dumps(request).encode())
    except CoreError as error:
        return error.code
    dataset = pydicom.dcmread(io.BytesIO(answer), force=True)
    original = pydicom.dcmread(io.BytesIO(core.get(f"/instances/{instance}/file")), force=True)
    return str(
        dataset.file_meta.TransferSyntaxUID
    ), dataset.SOPInstanceUID == original.SOPInstanceUID


# The files and syntaxes of the transcoding check. No JPEG-LS output: Orthanc 1.10.1's JPEG-LS
# encoder crashes the process on some pixel values (tests/integration/test_transcoding_safety.py).
TRANSCODED = [
    "CT_small.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_rgb_rle_2frame.dcm",
    "JPEG2000.dcm",
]
SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.70",
            "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5"]  # fmt: skip


def test_transcoding_succeeds_and_fails_alike(cores: tuple[FakeCore, RestCore]) -> None:
    fake, live = cores
    for name in TRANSCODED:
        dataset = pydicom.dcmread(PYDICOM_FILES / name, force=True)
        instance = json.loads(live.post("/tools/lookup", dataset.SOPInstanceUID.encode()))[0]["ID"]
        for syntax in SYNTAXES:
            expected = transcoded(live, instance, syntax)
            assert transcoded(fake, instance, syntax) == expected, (name, syntax)


def test_lookups_are_the_same(cores: tuple[FakeCore, RestCore]) -> None:
    fake, live = cores
    uids = {"1.2.3.4.5.6.7.8.9", ""}
    for level in LEVELS:
        for resource in json.loads(live.get(f"/{PLURAL[level]}?expand")):
            keyword = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
            uids.add(resource["MainDicomTags"].get(keyword[LEVELS.index(level)], ""))
    for uid in sorted(uids):
        if uid:
            same(fake, live, "POST", "/tools/lookup", uid.encode())


CT_STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
MR_INSTANCE = "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"
CT_INSTANCE = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
FINDS = [
    {"Level": "Study", "Query": {"StudyInstanceUID": CT_STUDY}},
    {"Level": "Study", "Query": {"StudyInstanceUID": CT_STUDY}, "Expand": True},
    {"Level": "Series", "Query": {"StudyInstanceUID": CT_STUDY}, "Expand": True},
    {"Level": "Instance", "Query": {"StudyInstanceUID": CT_STUDY}, "Expand": True},
    {"Level": "Study", "Query": {"StudyInstanceUID": "9.9.9"}},
    {"Level": "Study", "Query": {}},
    {"Level": "Series", "Query": {"Modality": "MR"}},
    {"Level": "Series", "Query": {"Modality": "CT\\MR"}},
    {"Level": "Study", "Query": {"PatientName": "Compressed*"}},
    {"Level": "Study", "Query": {"PatientName": "compressed*"}, "CaseSensitive": False},
    {"Level": "Study", "Query": {"StudyDate": "20040101-20041231"}},
    {"Level": "Study", "Query": {"StudyDate": "-20000101"}},
    {"Level": "Instance", "Query": {"SOPInstanceUID": CT_INSTANCE}},
    {"Level": "Study", "Query": {}, "Limit": 3, "Expand": True},
    {"Level": "Study", "Query": {}, "Since": 2, "Limit": 3},
    {"Level": "Instance", "Query": {"Modality": "MR"}, "Expand": True},
    {"Level": "Series", "Query": {"PatientID": "1CT1", "Modality": "CT"}},
    {"Level": "Study", "Query": {"PatientName": "*^CT?"}},
    {"Level": "Series", "Query": {}, "Since": 3, "Limit": 4, "Expand": True},
    {"Level": "Patient", "Query": {}},
    {"Level": "Instance", "Query": {}, "Limit": 5},
    {"Level": "Study", "Query": {"StudyDate": "2004*"}},
    {"Level": "Study", "Query": {"StudyDate": ""}},
    {"Level": "Study", "Query": {"0020,000d": CT_STUDY, "0008,0020": "20040119"}},
    {"Level": "Study", "Query": {"0010,0010": "Compressed*", "0008,1030": "e+1"}},
    {"Level": "Series", "Query": {"0008,0060": "MR", "0020,000d": "*"}},
    {"Level": "Instance", "Query": {"0018,0050": "5.000000"}},
    {"Level": "Instance", "Query": {"SliceThickness": "5*"}},
    {"Level": "Study", "Query": {"0008,0020": "2004*"}},
    {"Level": "Series", "Query": {"0008,0060": "M?", "0008,103e": "*"}},
    {"Level": "Instance", "Query": {"0020,0013": "1*"}},
]  # fmt: skip


@pytest.mark.parametrize("request_body", FINDS, ids=json.dumps)
def test_finds_are_the_same(cores: tuple[FakeCore, RestCore], request_body: dict) -> None:
    fake, live = cores
    same(fake, live, "POST", "/tools/find", json.dumps(request_body).encode())


def changes_since(core: Core, since: int) -> list[tuple[str, str, str]]:
    page = json.loads(core.get(f"/changes?since={since}&limit=100"))
    return [(c["ChangeType"], c["ResourceType"], c["ID"]) for c in page["Changes"]]


def last_change(core: Core) -> int:
    return int(json.loads(core.get("/changes?last"))["Last"])


def scenario(cores: tuple[FakeCore, RestCore], steps: Callable[[Core], list[Any]]) -> None:
    """The same steps on both cores: the same answers, and the same changes logged."""
    fake, live = cores
    marks = [last_change(fake), last_change(live)]
    assert stable(steps(fake)) == stable(steps(live))
    assert changes_since(fake, marks[0]) == changes_since(live, marks[1])


def test_attachments_are_kept_listed_and_removed_alike(cores: tuple[FakeCore, RestCore]) -> None:
    series = ids(cores[1], "Series")[0]
    base = f"/series/{series}/attachments"

    def steps(core: Core) -> list[Any]:
        return [
            answer(core, "GET", f"{base}/4391/data"),
            answer(core, "PUT", f"{base}/4391", b"first"),
            core.get(f"{base}/4391/data"),
            answer(core, "PUT", f"{base}/4391", b"second"),
            core.get(f"{base}/4391/data"),
            answer(core, "GET", base),
            answer(core, "DELETE", f"{base}/4391"),
            answer(core, "GET", f"{base}/4391/data"),
            answer(core, "DELETE", f"{base}/4391"),
        ]

    scenario(cores, steps)


def test_storing_and_deleting_are_logged_alike(cores: tuple[FakeCore, RestCore]) -> None:
    fake, live = cores
    study = json.loads(live.post("/tools/lookup", CT_STUDY.encode()))[0]["ID"]
    mr = json.loads(live.post("/tools/lookup", MR_INSTANCE.encode()))[0]["ID"]

    def steps(core: Core) -> list[Any]:
        return [
            answer(core, "DELETE", f"/studies/{study}"),
            answer(core, "GET", f"/studies/{study}"),
            answer(core, "POST", "/instances", (PYDICOM_FILES / "CT_small.dcm").read_bytes()),
            answer(core, "DELETE", f"/instances/{mr}"),
            answer(core, "GET", "/statistics"),
        ]

    scenario(cores, steps)
    for level in LEVELS:
        assert ids(fake, level) == ids(live, level)


def test_change_log_pages_have_the_same_form(cores: tuple[FakeCore, RestCore]) -> None:
    fake, live = cores
    for uri in ("/changes?last", f"/changes?since={last_change(live) - 3}&limit=2"):
        fake_uri = uri.replace(str(last_change(live) - 3), str(last_change(fake) - 3))
        fake_page, live_page = json.loads(fake.get(fake_uri)), json.loads(live.get(uri))
        assert sorted(fake_page) == sorted(live_page)
        assert fake_page["Done"] == live_page["Done"], uri
        assert [sorted(c) for c in fake_page["Changes"]] == [
            sorted(c) for c in live_page["Changes"]
        ]
        assert live_page["Last"] - fake_page["Last"] == last_change(live) - last_change(fake)


def test_unknown_resources_are_the_same_errors(cores: tuple[FakeCore, RestCore]) -> None:
    fake, live = cores
    unknown = "00000000-00000000-00000000-00000000-00000000"
    for uri in (
        f"/instances/{unknown}",
        f"/series/{unknown}/instances",
        f"/instances/{unknown}/file",
        f"/studies/{ids(live, 'Series')[0]}",  # a series id asked as a study
    ):
        same(fake, live, "GET", uri)


def test_an_instance_stored_again_over_itself_is_logged_alike(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With OverwriteInstances, as the metadata cache's tests use it: the same instance id, a
    new file, changes logged, the series listed in the same order."""
    settings = {"Plugins": [], "StableAge": 3600, "OverwriteInstances": True}
    orthanc = Orthanc(tmp_path_factory.mktemp("overwrite"), settings).start()
    try:
        cores = (FakeCore(config={"OverwriteInstances": True}), RestCore(orthanc.url))
        ct = (PYDICOM_FILES / "CT_small.dcm").read_bytes()
        series = [derived(ct, "1.2", "1.2.3", SOPInstanceUID=f"1.2.3.{n}") for n in (1, 2)]
        alone = derived(ct, "1.2", "1.2.4")  # the only instance of its series
        for core in cores:
            for data in [*series, alone]:
                core.post("/instances", data)
        sops = [pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID for d in (series[0], alone)]
        instances = [cores[0].id_of(sop) for sop in sops]
        uuids = [[fake_or_live_uuid(core, i) for i in instances] for core in cores]

        def steps(core: Core) -> list[Any]:
            stored = [answer(core, "POST", "/instances", data) for data in (series[0], alone)]
            listing = answer(core, "GET", f"/series/{stored[0]['ParentSeries']}/instances")
            return [*stored, listing]

        scenario(cores, steps)
        for core, before in zip(cores, uuids, strict=True):
            assert [fake_or_live_uuid(core, i) for i in instances] != before
    finally:
        orthanc.stop()


def fake_or_live_uuid(core: Core, instance: str) -> str:
    return str(json.loads(core.get(f"/instances/{instance}"))["FileUuid"])
