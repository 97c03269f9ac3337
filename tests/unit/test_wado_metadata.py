"""Retrieve Metadata: negotiation, extrapolation and the MainDicomTags mode, with a fake core."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.http.web import MultipartResponse, Request, Response
from orthanc_dicomweb.orthanc.core import ListedFile
from orthanc_dicomweb.orthanc.storage_ids import INSTANCE_METADATA, PREPARED_ANSWER, SERIES_METADATA
from orthanc_dicomweb.services.metadata.service import (
    MetadataCacheUpdate,
    RetrieveMetadata,
    evenly_spread,
    extrapolated_tags,
    majority_elements,
    wants_xml,
)
from tests.fake_core import DirectAccessMixin, FakeCore
from tests.unit.fakes import http_error
from tests.unit.test_metadata_cache import (
    instance_file,
    instance_id,
    series_core,
    series_id,
    store_again,
    study_id,
)

STUDY, SERIES = "1.2.3", "1.2.3.4"


@pytest.mark.parametrize(
    ("accept", "xml"),
    [
        (None, False),
        ("*/*", False),
        ("application/dicom+json", False),
        ("application/json", False),
        ('multipart/related; type="application/dicom+xml"', True),
        ("multipart/related;type=application/dicom+xml", True),
        ("application/dicom+xml", True),
        # As the official plugin: JSON wins at equal q, whatever the order.
        ("application/dicom+xml, application/json", False),
        ("toto, application/dicom+json", False),  # an item that is no media type is skipped
        ("application/dicom+json;q=0.5, multipart/related; type=application/dicom+xml", True),
        ("image/png, application/dicom+json", False),
    ],
)
def test_accept_chooses_json_or_xml(accept: str | None, xml: bool) -> None:
    assert wants_xml(accept) is xml


@pytest.mark.parametrize(
    "accept",
    [
        "image/jpeg",
        'multipart/related; type="application/dicom"',
        "application/dicom+json;q=0",
        "multipart/related",  # the official plugin wants the type of the parts
        "multipart/related; type=application/dicom+xml; transfer-syntax=1.2.840.10008.1.2.1",
        "toto",
        "toto, tata",
    ],
)
def test_unsupported_accept_is_400_as_in_the_official_plugin(accept: str) -> None:
    assert http_error(wants_xml, accept).status == 400


def test_extrapolated_tags_accept_keywords_and_hex_and_skip_unknown_names() -> None:
    assert extrapolated_tags(["Rows", "00280011", "NoSuchKeyword"], "X") == (0x00280010, 0x00280011)


def test_majority_needs_more_than_half_of_the_samples() -> None:
    rows = {"vr": "US", "Value": [512]}
    samples = [{"00280010": rows}, {"00280010": rows}, {"00280010": {"vr": "US", "Value": [256]}}]
    assert majority_elements(samples, [0x00280010]) == {"00280010": rows}
    split = [{"00280010": rows}, {"00280010": {"vr": "US", "Value": [256]}}]
    assert majority_elements(split, [0x00280010]) == {}
    assert majority_elements([{}, {}, {"00280010": rows}], [0x00280010]) == {}


def test_samples_are_spread_and_stable() -> None:
    items = [str(i) for i in range(10)]
    assert evenly_spread(items, 3) == ["0", "4", "9"]
    assert evenly_spread(items[:2], 3) == ["0", "1"]


def index_core() -> FakeCore:
    """A study of one CT series of two instances, which the MainDicomTags mode reads from the
    index."""
    patient = {"PatientName": "Doe^Jane", "PatientID": "P1"}
    files = [instance_file(n, StudyDate="20240101", Modality="CT", **patient) for n in (1, 2)]
    return FakeCore(files=files)


def request(
    *groups: str, accept: str | None = None, encoding: str = "", host: str = "example.org"
) -> Request:
    headers = {"host": host, "accept-encoding": encoding} | ({"accept": accept} if accept else {})
    return Request("GET", "/dicom-web/...", groups=groups, headers=headers)


def test_main_dicom_tags_mode_reads_only_the_index() -> None:
    core = index_core()
    service = RetrieveMetadata(Configuration(series_metadata="MainDicomTags"), core)
    answer = service.series_metadata(request(STUDY, SERIES))
    assert core.uris("GET") == []  # no instance read: /tools/find answers it all
    assert isinstance(answer, Response)
    assert answer.content_type == "application/dicom+json"
    datasets = json.loads(answer.body)
    assert len(datasets) == 2
    first = datasets[0]
    assert first["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}
    assert first["00080060"]["Value"] == ["CT"]
    assert first["00200013"] == {"vr": "IS", "Value": [1]}
    assert list(first) == sorted(first)


def test_xml_is_a_multipart_of_one_document_per_instance() -> None:
    service = RetrieveMetadata(Configuration(studies_metadata="MainDicomTags"), index_core())
    answer = service.study_metadata(
        request(STUDY, accept="multipart/related; type=application/dicom+xml")
    )
    assert isinstance(answer, MultipartResponse)
    assert answer.part_content_type == "application/dicom+xml"
    documents = list(answer.parts)
    assert len(documents) == 2
    assert b"NativeDicomModel" in documents[0]
    assert b"<FamilyName>Doe</FamilyName><GivenName>Jane</GivenName>" in documents[0]


def test_unknown_study_is_404_and_malformed_uid_is_400() -> None:
    service = RetrieveMetadata(Configuration(), index_core())
    assert http_error(service.study_metadata, request("9.9.9")).status == 404
    assert http_error(service.series_metadata, request(STUDY, "1.2.x")).status == 400


@pytest.mark.parametrize(
    "study_id", ["t1", "../../x", "ABCDEF01-ABCDEF01-ABCDEF01-ABCDEF01-ABCDEF01"]
)
def test_cache_update_refuses_what_is_not_an_orthanc_id(study_id: str) -> None:
    update = MetadataCacheUpdate(Configuration(), index_core())
    asked = Request("POST", "/studies/x/update-dicomweb-cache", groups=(study_id,))
    assert http_error(update.update_study, asked).status == 400


def sop_of(number: int) -> str:
    return f"{SERIES}.{number}"


def test_instance_metadata_is_kept_with_the_instance_once_computed() -> None:
    core = series_core(2)
    service = RetrieveMetadata(Configuration(), core)
    computed = service.instance_metadata(request(STUDY, SERIES, sop_of(2)))
    assert core.tags_reads() == 1
    cached = service.instance_metadata(request(STUDY, SERIES, sop_of(2)))
    assert core.tags_reads() == 1  # no tags read: the dataset kept with the instance
    assert isinstance(cached, Response) and isinstance(computed, Response)
    assert cached.body == computed.body
    assert json.loads(cached.body)[0]["00080018"]["Value"] == [sop_of(2)]


class DirectCore(DirectAccessMixin, FakeCore):
    """A core with the SDK's instance lookup, whose files are not read here."""

    def instance_file(self, orthanc_id: str, listed: ListedFile | None = None) -> bytes:
        raise AssertionError("the file is not read")


def test_instance_kept_by_the_series_rebuild_costs_one_lookup_and_one_attachment_read() -> None:
    core = DirectCore(files=[instance_file(1), instance_file(2)])
    service = RetrieveMetadata(Configuration(), core)
    service.cache.rebuild(series_id(core))
    core.calls.clear()
    answer = service.instance_metadata(request(STUDY, SERIES, sop_of(1)))
    assert isinstance(answer, Response)
    assert json.loads(answer.body)[0]["00080018"]["Value"] == [sop_of(1)]
    kept = f"/instances/{instance_id(core, 1)}/attachments/{INSTANCE_METADATA}/data"
    assert (core.uris("POST"), core.uris()) == ([], [kept])


def test_instance_metadata_is_not_kept_by_a_read_only_orthanc() -> None:
    core = series_core(1)
    service = RetrieveMetadata(Configuration(read_only=True), core)
    service.instance_metadata(request(STUDY, SERIES, sop_of(1)))
    assert core.attachments() == {}


def test_kept_instance_of_another_path_is_not_answered() -> None:
    core = series_core(1)
    service = RetrieveMetadata(Configuration(), core)
    service.cache.rebuild(series_id(core))
    error = http_error(service.instance_metadata, request("9.9.9", SERIES, sop_of(1)))
    assert error.status == 404
    core.remove(instance_id(core, 1))  # deleted: its dataset kept with it goes too
    assert http_error(service.instance_metadata, request(STUDY, SERIES, sop_of(1))).status == 404


def test_instance_metadata_without_cache_reads_no_attachment() -> None:
    core = series_core(1)
    service = RetrieveMetadata(Configuration(enable_metadata_cache=False), core)
    service.instance_metadata(request(STUDY, SERIES, sop_of(1)))
    assert not any("attachments" in uri for _, uri, _ in core.calls)


def reads(core: FakeCore, attachment: int) -> int:
    return sum(uri.endswith(f"/attachments/{attachment}/data") for uri in core.uris())


@pytest.mark.parametrize("level", ["study", "series"])
def test_repeated_metadata_is_the_prepared_answer(level: str) -> None:
    core = series_core(2)
    service = RetrieveMetadata(Configuration(), core)
    handler = service.study_metadata if level == "study" else service.series_metadata
    groups = (STUDY,) if level == "study" else (STUDY, SERIES)
    first = handler(request(*groups))
    assert core.tags_reads() == 2
    zipped = handler(request(*groups, encoding="gzip, deflate"))
    plain = handler(request(*groups))
    assert core.tags_reads() == 2 and reads(core, SERIES_METADATA) == 1  # the first call only
    assert isinstance(first, Response) and isinstance(zipped, Response)
    assert isinstance(plain, Response)
    assert zipped.headers == {} and plain.headers == {}
    assert zipped.body == plain.body == first.body
    resource = f"/studies/{study_id(core)}" if level == "study" else f"/series/{series_id(core)}"
    assert f"{resource}/attachments/{PREPARED_ANSWER}" in core.attachments()
    uri = json.loads(first.body)[0]["7FE00010"]["BulkDataURI"]
    assert uri.startswith(f"http://example.org/dicom-web/studies/{STUDY}/series/{SERIES}/")


def test_prepared_answer_follows_the_base_and_the_instances() -> None:
    core = series_core(1)
    service = RetrieveMetadata(Configuration(), core)
    service.series_metadata(request(STUDY, SERIES))
    other = service.series_metadata(request(STUDY, SERIES, host="other.example"))
    assert isinstance(other, Response)
    assert b"http://other.example/dicom-web/studies/" in other.body
    assert b"example.org" not in other.body
    core.store(instance_file(2))
    grown = service.series_metadata(request(STUDY, SERIES, host="other.example"))
    assert isinstance(grown, Response) and len(json.loads(grown.body)) == 2
    store_again(core, 1)
    tags_reads = core.tags_reads()
    again = service.series_metadata(request(STUDY, SERIES, host="other.example"))
    assert isinstance(again, Response)
    # The same datasets; the core lists the instance stored again last (the contract test).
    assert by_sop(json.loads(again.body)) == by_sop(json.loads(grown.body))
    assert core.tags_reads() > tags_reads  # not the prepared answer: a file changed


def by_sop(datasets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {dataset["00080018"]["Value"][0]: dataset for dataset in datasets}


def test_metadata_without_cache_is_the_same_and_keeps_nothing() -> None:
    core = series_core(2)
    cached = RetrieveMetadata(Configuration(), core).series_metadata(request(STUDY, SERIES))
    fresh_core = series_core(2)
    service = RetrieveMetadata(Configuration(enable_metadata_cache=False), fresh_core)
    fresh = service.series_metadata(request(STUDY, SERIES, encoding="gzip"))
    assert isinstance(cached, Response) and isinstance(fresh, Response)
    assert fresh.body == cached.body and fresh.headers == {}
    assert fresh_core.attachments() == {}


@pytest.mark.parametrize("groups", [("9.9.9",), (STUDY, "9.9.9"), ("9.9.9", SERIES)])
def test_unknown_study_or_series_is_404_in_full_mode(groups: tuple[str, ...]) -> None:
    service = RetrieveMetadata(Configuration(), series_core(1))
    handler = service.study_metadata if len(groups) == 1 else service.series_metadata
    assert http_error(handler, request(*groups)).status == 404


def test_one_study_uid_in_two_orthanc_studies_is_409() -> None:
    twins = [{"ID": "s1", "ParentStudy": "t1"}, {"ID": "s2", "ParentStudy": "t2"}]
    core = FakeCore({("POST", "/tools/find"): twins})
    service = RetrieveMetadata(Configuration(), core)
    assert http_error(service.study_metadata, request(STUDY)).status == 409
