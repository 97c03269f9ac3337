"""QIDO-RS SearchService with a fake core: the core calls it makes, and the answers it builds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.dicom.json_model import encode_datasets, from_orthanc_tags
from orthanc_dicomweb.dicom.xml_model import from_native_xml
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.web import MultipartResponse, Request, Response
from orthanc_dicomweb.orthanc.storage_ids import INSTANCE_SUMMARIES
from orthanc_dicomweb.services.qido import index as qido_index
from orthanc_dicomweb.services.qido import reading as qido_reading
from orthanc_dicomweb.services.qido.attributes import PLURAL, default_tags
from orthanc_dicomweb.services.qido.reading import InstanceReads
from orthanc_dicomweb.services.qido.search import SearchService
from orthanc_dicomweb.services.qido.summary import SUMMARY_ATTACHMENT
from tests.unit.fakes import FakeCore

STUDIES = [
    {
        "ID": "st1",
        "Type": "Study",
        "MainDicomTags": {"StudyInstanceUID": "1.1", "StudyDate": "20200101", "StudyID": ""},
        "PatientMainDicomTags": {"PatientName": "Doe^John", "PatientID": "P1"},
        "Series": ["se1", "se2"],
    },
    {
        "ID": "st2",
        "Type": "Study",
        "MainDicomTags": {"StudyInstanceUID": "1.2", "StudyDate": "20210101"},
        "PatientMainDicomTags": {"PatientName": "Roe^Jane", "PatientID": "P2"},
        "Series": ["se3"],
    },
]
SERIES = [
    {
        "ID": "se1",
        "Type": "Series",
        "ParentStudy": "st1",
        "MainDicomTags": {"SeriesInstanceUID": "1.1.1", "Modality": "CT", "SeriesNumber": "1"},
        "Instances": ["i1", "i2"],
    },
    {
        "ID": "se2",
        "Type": "Series",
        "ParentStudy": "st1",
        "MainDicomTags": {"SeriesInstanceUID": "1.1.2", "Modality": "SR"},
        "Instances": ["i3"],
    },
    {
        "ID": "se3",
        "Type": "Series",
        "ParentStudy": "st2",
        "MainDicomTags": {"SeriesInstanceUID": "1.2.1", "Modality": "MR"},
        "Instances": ["i4"],
    },
]
INSTANCES = [
    {
        "ID": f"i{n}",
        "Type": "Instance",
        "ParentSeries": series,
        "FileUuid": f"file-{n}",
        "MainDicomTags": {"SOPInstanceUID": f"1.9.{n}", "InstanceNumber": str(n)},
    }
    for n, series in ((1, "se1"), (2, "se1"), (3, "se2"), (4, "se3"))
]
BY_LEVEL = {"Study": STUDIES, "Series": SERIES, "Instance": INSTANCES}
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
KEYS = {"StudyInstanceUID": "0020,000d", "SeriesInstanceUID": "0020,000e"}


def instance_tags(number: int) -> dict[str, Any]:
    step = "S1" if number == 1 else "S2"
    return {
        "0008,0016": {"Name": "SOPClassUID", "Type": "String", "Value": CT_IMAGE_STORAGE},
        "0008,0018": {"Name": "SOPInstanceUID", "Type": "String", "Value": f"1.9.{number}"},
        "0008,0201": {"Name": "TimezoneOffsetFromUTC", "Type": "String", "Value": "+0100"},
        "0028,0010": {"Name": "Rows", "Type": "String", "Value": "512"},
        "0028,0011": {"Name": "Columns", "Type": "String", "Value": "256"},
        "0028,0100": {"Name": "BitsAllocated", "Type": "String", "Value": "16"},
        "0040,0275": {
            "Name": "RequestAttributesSequence",
            "Type": "Sequence",
            "Value": [
                {"0040,0009": {"Name": "ScheduledProcedureStepID", "Type": "String", "Value": step}}
            ],
        },
    }  # fmt: skip


def uids_of(resource: dict[str, Any]) -> dict[str, str]:
    """The UIDs of a resource and its parents, keyed as the fake's find constraints."""
    uids = {}
    while resource:
        for keyword, key in KEYS.items():
            if keyword in resource["MainDicomTags"]:
                uids[key] = resource["MainDicomTags"][keyword]
        parent = resource.get("ParentSeries") or resource.get("ParentStudy")
        resource = next((r for r in SERIES + STUDIES if r["ID"] == parent), None)
    return uids


def fake_find(body: bytes) -> list[Any]:
    """The core's /tools/find on the fake index: UIDs filter, other keys are the core's job."""
    request = json.loads(body)
    found = []
    for resource in BY_LEVEL[request["Level"]]:
        uids = uids_of(resource)
        query = {KEYS.get(k, k): v for k, v in request["Query"].items()}
        fixed = {k: v for k, v in query.items() if k in KEYS.values()}
        if all(uids.get(key) in value.split("\\") for key, value in fixed.items()):
            found.append(resource if request["Expand"] else resource["ID"])
    since = request.get("Since", 0)
    return found[since : since + request["Limit"]] if "Limit" in request else found[since:]


def children(level: str, key: str, parent: str) -> list[dict[str, Any]]:
    """The core's expanded listing of a resource's children (or grandchildren)."""
    found = [r for r in BY_LEVEL[level] if r.get(key) == parent]
    if level == "Instance" and key == "ParentStudy":
        series = {r["ID"] for r in children("Series", "ParentStudy", parent)}
        found = [r for r in INSTANCES if r["ParentSeries"] in series]
    return found


@pytest.fixture
def core() -> FakeCore:
    answers: dict[tuple[str, str], Any] = {("POST", "/tools/find"): fake_find}
    answers[("GET", "/statistics")] = {"CountStudies": 2, "CountSeries": 3, "CountInstances": 4}
    for level, resources in BY_LEVEL.items():
        answers[("GET", f"/{PLURAL[level]}?expand")] = resources
    for resource in STUDIES:
        answers[("GET", f"/studies/{resource['ID']}")] = resource
        for level in ("Series", "Instance"):
            uri = f"/studies/{resource['ID']}/{PLURAL[level]}"
            answers[("GET", uri)] = children(level, "ParentStudy", resource["ID"])
    for resource in SERIES:
        answers[("GET", f"/series/{resource['ID']}")] = resource
        uri = f"/series/{resource['ID']}/instances"
        answers[("GET", uri)] = children("Instance", "ParentSeries", resource["ID"])
    for n in range(1, 5):
        answers[("GET", f"/instances/i{n}/tags")] = instance_tags(n)
        answers[("GET", f"/instances/i{n}/metadata/SopClassUid")] = f"1.2.3.{n % 2}".encode()
    return FakeCore(answers)


def search(
    core: FakeCore,
    path: str,
    query: dict[str, str] | None = None,
    groups: tuple[str, ...] = (),
    accept: str = "application/dicom+json",
    config: Configuration | None = None,
) -> Response | MultipartResponse:
    service = SearchService(config or Configuration(enable_metadata_cache=False), core)
    request = Request("GET", path, groups, query or {}, {"host": "pacs:8042", "accept": accept})
    handler = {
        "studies": service.search_for_studies,
        "series": service.search_for_series,
        "instances": service.search_for_instances,
    }[path.rsplit("/", 1)[-1]]
    return handler(request)


def datasets(answer: Response | MultipartResponse) -> list[dict[str, Any]]:
    assert isinstance(answer, Response)
    return json.loads(answer.body)


def finds(core: FakeCore) -> list[dict[str, Any]]:
    return [json.loads(body) for method, uri, body in core.calls if uri == "/tools/find"]


def value(dataset: dict[str, Any], key: str) -> Any:
    return dataset[key].get("Value")


def gets(core: FakeCore) -> list[str]:
    return [uri for method, uri, _ in core.calls if method == "GET"]


def test_search_for_all_studies_lists_them_then_reads_the_series_of_each(core: FakeCore) -> None:
    answer = search(core, "/dicom-web/studies")
    assert answer.content_type == "application/dicom+json"
    first, second = datasets(answer)
    assert not finds(core)  # a listing costs the core half a /tools/find
    assert gets(core) == ["/studies?expand", "/studies/st1/series", "/studies/st2/series"]
    assert value(first, "00100010") == [{"Alphabetic": "Doe^John"}]
    assert value(first, "00080061") == ["CT", "SR"]
    assert value(first, "00201206") == [2]
    assert value(first, "00201208") == [3]
    assert value(first, "00080005") == ["ISO_IR 192"]
    assert value(first, "00080056") == ["ONLINE"]
    assert value(first, "00081190") == ["http://pacs:8042/dicom-web/studies/1.1"]
    assert first["00200010"] == {"vr": "SH"}  # present but empty: no "Value"
    assert "00200010" not in second  # absent from the index: absent from the answer
    assert value(second, "00080061") == ["MR"]


def test_matching_keys_and_paging_go_to_the_core(core: FakeCore) -> None:
    query = {"PatientName": "doe*", "StudyDate": "20200101-", "limit": "5", "offset": "1"}
    search(core, "/dicom-web/studies", query, config=Configuration(qido_case_sensitive=True))
    request = finds(core)[0]
    assert request["Query"] == {"0010,0010": "doe*", "0008,0020": "20200101-"}
    assert (request["Since"], request["Limit"], request["CaseSensitive"]) == (1, 5, True)


def test_keys_the_core_cannot_match_exactly_are_checked_here_then_paged(core: FakeCore) -> None:
    # The core would also find empty dates: every candidate is checked, the page made here.
    query = {"StudyDate": "-20200601", "PatientName": "*", "limit": "1"}
    found = datasets(search(core, "/dicom-web/studies", query))
    assert [value(d, "0020000D") for d in found] == [["1.1"]]
    request = finds(core)[0]
    assert request["Query"] == {"0008,0020": "-20200601"}
    assert "Limit" not in request and "Since" not in request
    assert request["CaseSensitive"]  # no PN key: every VR is matched case-sensitively
    found = datasets(search(core, "/dicom-web/studies", {"StudyDate": "-20200601", "offset": "1"}))
    assert found == []


def test_a_reversed_range_finds_nothing_without_asking_the_core(core: FakeCore) -> None:
    assert datasets(search(core, "/dicom-web/studies", {"StudyDate": "20211231-20200101"})) == []
    assert finds(core) == []


def test_paging_without_matching_keys_goes_to_the_core_listing(core: FakeCore) -> None:
    core.answers[("GET", "/studies?expand&since=1&limit=5")] = STUDIES[1:]
    core.answers[("GET", f"/studies?expand&since=1&limit={2**31 - 1}")] = STUDIES[1:]
    found = datasets(search(core, "/dicom-web/studies", {"limit": "5", "offset": "1"}))
    assert [value(d, "0020000D") for d in found] == [["1.2"]]
    assert datasets(search(core, "/dicom-web/studies", {"offset": "1"})) == found


def test_universal_matching_returns_the_attribute_without_constraining(core: FakeCore) -> None:
    first = datasets(search(core, "/dicom-web/studies", {"StudyDescription": ""}))[0]
    assert not finds(core)
    assert "00081030" not in first  # asked, but not in this study


def test_non_indexed_includefield_reads_one_instance_per_study(core: FakeCore) -> None:
    answer = search(core, "/dicom-web/studies", {"includefield": "TimezoneOffsetFromUTC"})
    first, _ = datasets(answer)
    assert value(first, "00080201") == ["+0100"]
    reads = [uri for _, uri, _ in core.calls if uri.endswith("/tags")]
    assert reads == ["/instances/i1/tags", "/instances/i4/tags"]


def test_sop_classes_in_study_from_the_metadata_of_every_instance(core: FakeCore) -> None:
    first = datasets(search(core, "/dicom-web/studies", {"includefield": "SOPClassesInStudy"}))[0]
    assert value(first, "00080062") == ["1.2.3.0", "1.2.3.1"]


def test_includefield_all_returns_the_read_attributes_too(core: FakeCore) -> None:
    first = datasets(search(core, "/dicom-web/studies", {"includefield": "all"}))[0]
    assert value(first, "00280010") == [512]
    assert first["00400275"]["vr"] == "SQ"


def test_search_for_series_of_a_study(core: FakeCore) -> None:
    answer = search(core, "/dicom-web/studies/1.1/series", groups=("1.1",))
    first, _ = datasets(answer)
    assert finds(core)[0]["Query"] == {"StudyInstanceUID": "1.1"}  # where the study is
    assert "/studies/st1/series" in gets(core)  # then its series, in one listing
    assert value(first, "00080060") == ["CT"]
    assert value(first, "00201209") == [2]
    assert value(first, "00100020") == ["P1"]  # study attributes come along, as officially
    assert value(first, "00081190") == ["http://pacs:8042/dicom-web/studies/1.1/series/1.1.1"]
    assert "00201208" not in first  # computed study attributes are not
    assert ("GET", "/studies/st1", None) in core.calls
    assert sum(uri == "/studies/st1" for _, uri, _ in core.calls) == 1


def test_search_for_instances_reads_each_instance_and_each_parent_once(core: FakeCore) -> None:
    answer = search(core, "/dicom-web/studies/1.1/instances", groups=("1.1",))
    found = datasets(answer)
    assert [value(d, "00080018") for d in found] == [["1.9.1"], ["1.9.2"], ["1.9.3"]]
    assert value(found[0], "00280010") == [512]
    assert value(found[0], "00080016") == [CT_IMAGE_STORAGE]
    assert value(found[0], "00081190") == [
        "http://pacs:8042/dicom-web/studies/1.1/series/1.1.1/instances/1.9.1"
    ]
    assert sorted(gets(core)) == sorted(
        ["/studies/st1/instances", "/series/se1", "/series/se2", "/studies/st1"]
        + [f"/instances/i{n}/tags" for n in (1, 2, 3)]
    )


def test_sequence_matching_filters_before_paging(core: FakeCore) -> None:
    query = {"00400275.00400009": "S2", "limit": "1", "offset": "1"}
    found = datasets(search(core, "/dicom-web/instances", query))
    assert "/instances?expand" in gets(core)  # the core cannot page what it cannot match
    assert [value(d, "00080018") for d in found] == [["1.9.3"]]  # i2, i3, i4 match; 2nd one
    assert found[0]["00400275"]["vr"] == "SQ"


def test_a_key_contradicting_the_path_finds_nothing(core: FakeCore) -> None:
    query = {"StudyInstanceUID": "1.2"}
    assert datasets(search(core, "/dicom-web/studies/1.1/series", query, ("1.1",))) == []
    assert all(request["Level"] == "Study" for request in finds(core))  # only the 404 check


def test_unknown_parent_is_404(core: FakeCore) -> None:
    with pytest.raises(HttpError) as caught:
        search(core, "/dicom-web/studies/1.7/series", groups=("1.7",))
    assert caught.value.status == 404
    assert "1.7" in caught.value.message


def test_malformed_parent_uid_is_400(core: FakeCore) -> None:
    with pytest.raises(HttpError) as caught:
        search(core, "/dicom-web/studies/x.1/instances", groups=("x.1",))
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "accept", ["image/png", 'multipart/related; type="application/dicom"', "text/html"]
)
def test_unacceptable_media_types_get_406(core: FakeCore, accept: str) -> None:
    with pytest.raises(HttpError) as caught:
        search(core, "/dicom-web/studies", accept=accept)
    assert caught.value.status == 406
    assert not core.calls  # refused before any work


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/json", "application/json"),
        ("*/*", "application/dicom+json"),
        ("application/dicom+json, application/json", "application/dicom+json"),
        ("image/png, application/json;q=0.5", "application/json"),
    ],
)
def test_json_media_types(core: FakeCore, accept: str, content_type: str) -> None:
    answer = search(core, "/dicom-web/studies", accept=accept)
    assert isinstance(answer, Response) and answer.content_type == content_type


def test_xml_answer_is_one_native_model_part_per_result(core: FakeCore) -> None:
    answer = search(
        core, "/dicom-web/studies", accept='multipart/related; type="application/dicom+xml"'
    )
    assert isinstance(answer, MultipartResponse)
    assert answer.part_content_type == "application/dicom+xml"
    parts = [from_native_xml(part) for part in answer.parts]
    json_answer = datasets(search(core, "/dicom-web/studies"))
    assert [p["0020000D"]["Value"] for p in parts] == [d["0020000D"]["Value"] for d in json_answer]


def test_default_tags_include_parents_but_not_their_computed_ones() -> None:
    series = default_tags("Series")
    assert 0x00100010 in series and 0x0020000E in series
    assert 0x00201208 not in series and 0x00080061 not in series
    assert {0x00280010, 0x00080016, 0x0020000D} <= default_tags("Instance")


def test_a_parent_uid_as_matching_key_leaves_that_parents_defaults_out() -> None:
    study_uid, series_uid, patient_name, modality = 0x0020000D, 0x0020000E, 0x00100010, 0x00080060
    assert patient_name not in default_tags("Series", frozenset({study_uid}))
    instances = default_tags("Instance", frozenset({series_uid}))
    assert patient_name in instances and modality not in instances
    instances = default_tags("Instance", frozenset({study_uid, series_uid}))
    assert not {patient_name, modality} & instances
    assert 0x00280010 in instances  # the level's own defaults stay


def test_series_search_with_a_study_uid_key_returns_no_study_attributes(core: FakeCore) -> None:
    (found,) = datasets(search(core, "/dicom-web/series", {"StudyInstanceUID": "1.2"}))
    assert "00100010" not in found and found["0020000D"]["Value"] == ["1.2"]
    (found,) = datasets(search(core, "/dicom-web/studies/1.2/series", groups=("1.2",)))
    assert found["00100010"]["Value"] == [{"Alphabetic": "Roe^Jane"}]  # the path does not count


class StubSeriesCache:
    """The series metadata cache (tested on its own), answering from the fake's tags."""

    def __init__(self) -> None:
        self.series: list[str] = []

    def series_json(self, series_id: str) -> bytes:
        self.series.append(series_id)
        instances = next(series["Instances"] for series in SERIES if series["ID"] == series_id)
        datasets = [from_orthanc_tags(instance_tags(int(i[1:]))) for i in instances]
        return encode_datasets(datasets)


@pytest.fixture
def series_cache(monkeypatch: pytest.MonkeyPatch) -> StubSeriesCache:
    stub = StubSeriesCache()
    monkeypatch.setattr(InstanceReads, "_series_cache", stub)
    return stub


CACHED = Configuration(enable_metadata_cache=True)


def test_instances_of_a_series_come_from_its_cached_metadata(
    core: FakeCore, series_cache: StubSeriesCache
) -> None:
    path, groups = "/dicom-web/studies/1.1/instances", ("1.1",)
    cached = datasets(search(core, path, groups=groups, config=CACHED))
    assert series_cache.series == ["se1", "se2"]
    assert not [uri for _, uri, _ in core.calls if uri.endswith("/tags")]
    assert cached == datasets(search(core, path, groups=groups))  # same as read one by one
    assert value(cached[0], "00280010") == [512]


def test_a_small_part_of_a_series_is_read_instance_by_instance(
    core: FakeCore, series_cache: StubSeriesCache
) -> None:
    path, groups = "/dicom-web/studies/1.1/series/1.1.1/instances", ("1.1", "1.1.1")
    search(core, path, {"limit": "1"}, groups, config=CACHED)
    assert series_cache.series == []
    assert ("GET", "/instances/i1/tags", None) in core.calls


def test_studies_holding_most_series_take_every_series_in_one_listing(
    core: FakeCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qido_index, "BULK_MINIMUM", 1)
    first = datasets(search(core, "/dicom-web/studies"))[0]
    assert gets(core) == ["/studies?expand", "/statistics", "/series?expand"]
    assert value(first, "00201208") == [3]


def test_a_few_studies_among_many_take_the_series_of_each(
    core: FakeCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qido_index, "BULK_MINIMUM", 1)
    core.answers[("GET", "/statistics")] = {"CountSeries": 1000}
    first, second = datasets(search(core, "/dicom-web/studies"))
    assert gets(core)[-2:] == ["/studies/st1/series", "/studies/st2/series"]
    assert (value(first, "00201208"), value(second, "00201208")) == ([3], [1])


def test_parents_that_are_most_of_the_database_are_listed_at_once(
    core: FakeCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qido_index, "BULK_MINIMUM", 1)
    found = datasets(search(core, "/dicom-web/series"))
    assert gets(core) == ["/series?expand", "/statistics", "/studies?expand"]
    assert [value(d, "00100020") for d in found] == [["P1"], ["P1"], ["P2"]]


def test_an_instance_deleted_during_the_search_is_not_an_error(core: FakeCore) -> None:
    del core.answers[("GET", "/instances/i4/tags")]
    first, second = datasets(
        search(core, "/dicom-web/studies", {"includefield": "TimezoneOffsetFromUTC"})
    )
    assert value(first, "00080201") == ["+0100"]
    assert "00080201" not in second
    assert value(second, "0020000D") == ["1.2"]


def storing_attachments(core: FakeCore) -> None:
    """Let the fake keep what is PUT, and answer it to the matching GET."""

    def put(uri: str) -> Any:
        def store(body: bytes) -> bytes:
            core.answers[("GET", f"{uri}/data")] = body
            return b"{}"

        return store

    for resource in SERIES:
        uri = f"/series/{resource['ID']}/attachments/{SUMMARY_ATTACHMENT}"
        core.answers[("PUT", uri)] = put(uri)


def test_instance_summaries_are_built_once_then_serve_the_searches(
    core: FakeCore, series_cache: StubSeriesCache
) -> None:
    storing_attachments(core)
    path, groups = "/dicom-web/studies/1.1/instances", ("1.1",)
    first = datasets(search(core, path, groups=groups, config=CACHED))
    assert series_cache.series == ["se1", "se2"]
    assert sum(method == "PUT" for method, _, _ in core.calls) == 2
    core.calls.clear()
    again = datasets(search(core, path, groups=groups, config=CACHED))
    assert again == first
    assert series_cache.series == ["se1", "se2"]  # not read again
    assert not [uri for _, uri, _ in core.calls if uri.endswith("/tags")]
    assert value(again[0], "00280010") == [512]


def test_an_instance_stored_again_is_read_again(
    core: FakeCore, series_cache: StubSeriesCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    storing_attachments(core)
    path, groups = "/dicom-web/studies/1.1/series/1.1.1/instances", ("1.1", "1.1.1")
    search(core, path, groups=groups, config=CACHED)
    monkeypatch.setitem(INSTANCES[0], "FileUuid", "new-file")
    core.calls.clear()
    search(core, path, {"limit": "1"}, groups, config=CACHED)
    assert ("GET", "/instances/i1/tags", None) in core.calls  # its entry no longer matches


def test_summaries_are_not_written_in_read_only_mode(
    core: FakeCore, series_cache: StubSeriesCache
) -> None:
    storing_attachments(core)
    config = Configuration(enable_metadata_cache=True, read_only=True)
    search(core, "/dicom-web/studies/1.1/instances", groups=("1.1",), config=config)
    assert not [call for call in core.calls if call[0] == "PUT"]


def test_includefield_beyond_the_summaries_reads_the_instances(
    core: FakeCore, series_cache: StubSeriesCache
) -> None:
    path, groups = "/dicom-web/studies/1.1/series/1.1.1/instances", ("1.1", "1.1.1")
    found = datasets(search(core, path, {"includefield": "all"}, groups, config=CACHED))
    assert not [uri for _, uri, _ in core.calls if f"/{INSTANCE_SUMMARIES}/" in uri]
    assert found[0]["00400275"]["vr"] == "SQ"


def test_bare_dicom_xml_is_answered_as_multipart_xml_like_metadata(core: FakeCore) -> None:
    answer = search(core, "/dicom-web/studies", accept="application/dicom+xml")
    assert isinstance(answer, MultipartResponse)
    assert answer.part_content_type == "application/dicom+xml"


def test_the_tags_read_for_a_search_keep_the_creators_of_wanted_private_elements() -> None:
    tags = {
        "0009,0010": "ACME",  # the creator of block 0009,10xx
        "0009,1001": "private value",
        "0011,0010": "OTHER",  # the creator of a block not wanted
        "0010,0010": "DOE^JOHN",
    }
    assert qido_reading._subset(tags, {0x00091001, 0x00100010}) == {
        "0009,0010": "ACME",
        "0009,1001": "private value",
        "0010,0010": "DOE^JOHN",
    }
    # A wanted creator is read as itself; a wanted tag of a reserved odd group has no creator.
    assert qido_reading._subset(tags, {0x00090010}) == {"0009,0010": "ACME"}
    assert qido_reading._subset({"0001,0010": "x", "0001,1001": "y"}, {0x00011001}) == {
        "0001,1001": "y"
    }
