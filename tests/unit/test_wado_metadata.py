"""Retrieve Metadata: negotiation, extrapolation and the MainDicomTags mode, with a fake core."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orthanc_dicomweb.config import Configuration
from orthanc_dicomweb.core import CoreError
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.wado_metadata import (
    MetadataCacheUpdate,
    RetrieveMetadata,
    evenly_spread,
    extrapolated_tags,
    majority_elements,
    wants_xml,
)
from orthanc_dicomweb.web import MultipartResponse, Request, Response
from tests.unit.test_metadata_cache import FakeCore as SeriesCore

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
        ("multipart/related", True),
        ("application/dicom+xml", True),
        ("application/dicom+json;q=0.5, multipart/related; type=application/dicom+xml", True),
        ("image/png, application/dicom+json", False),
    ],
)
def test_accept_chooses_json_or_xml(accept: str | None, xml: bool) -> None:
    assert wants_xml(accept) is xml


@pytest.mark.parametrize(
    "accept",
    ["image/jpeg", 'multipart/related; type="application/dicom"', "application/dicom+json;q=0"],
)
def test_unsupported_accept_is_406(accept: str) -> None:
    with pytest.raises(HttpError) as raised:
        wants_xml(accept)
    assert raised.value.status == 406


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


class IndexCore:
    """A core that answers `/tools/find` from main tags of one study with two instances."""

    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []

    def post(self, uri: str, body: bytes, after_plugins: bool = False) -> bytes:
        request = json.loads(body)
        self.found.append(request)
        answers = {
            "Study": [
                {
                    "ID": "t1",
                    "MainDicomTags": {"StudyInstanceUID": STUDY, "StudyDate": "20240101"},
                    "PatientMainDicomTags": {"PatientName": "Doe^Jane", "PatientID": "P1"},
                }
            ],
            "Series": [
                {"ID": "s1", "MainDicomTags": {"SeriesInstanceUID": SERIES, "Modality": "CT"}}
            ],
            "Instance": [
                {
                    "ID": f"i{n}",
                    "ParentSeries": "s1",
                    "MainDicomTags": {"SOPInstanceUID": f"{SERIES}.{n}", "InstanceNumber": str(n)},
                }
                for n in (1, 2)
            ],
        }
        if request["Query"].get("StudyInstanceUID") != STUDY:
            return b"[]"
        level = request["Level"]
        return json.dumps(
            answers[level] if request["Expand"] else [a["ID"] for a in answers[level]]
        ).encode()

    def get(self, uri: str) -> bytes:
        raise CoreError(17, "Unknown resource", uri)

    def put(self, uri: str, body: bytes) -> bytes:
        raise AssertionError("no write expected")

    def delete(self, uri: str) -> None:
        raise AssertionError("no delete expected")

    def configuration(self) -> dict[str, Any]:
        return {}


def request(*groups: str, accept: str | None = None) -> Request:
    headers = {"host": "example.org"} | ({"accept": accept} if accept else {})
    return Request("GET", "/dicom-web/...", groups=groups, headers=headers)


def test_main_dicom_tags_mode_reads_only_the_index() -> None:
    service = RetrieveMetadata(Configuration(series_metadata="MainDicomTags"), IndexCore())
    answer = service.series_metadata(request(STUDY, SERIES))
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
    service = RetrieveMetadata(Configuration(studies_metadata="MainDicomTags"), IndexCore())
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
    service = RetrieveMetadata(Configuration(), IndexCore())
    with pytest.raises(HttpError) as raised:
        service.study_metadata(request("9.9.9"))
    assert raised.value.status == 404
    with pytest.raises(HttpError) as raised:
        service.series_metadata(request(STUDY, "1.2.x"))
    assert raised.value.status == 400


@pytest.mark.parametrize(
    "study_id", ["t1", "../../x", "ABCDEF01-ABCDEF01-ABCDEF01-ABCDEF01-ABCDEF01"]
)
def test_cache_update_refuses_what_is_not_an_orthanc_id(study_id: str) -> None:
    update = MetadataCacheUpdate(Configuration(), IndexCore())
    with pytest.raises(HttpError) as raised:
        update.update_study(Request("POST", "/studies/x/update-dicomweb-cache", groups=(study_id,)))
    assert raised.value.status == 400


class LookupCore(SeriesCore):
    """The series `s1` of `test_metadata_cache`, with the core's `/tools/lookup` of its UIDs."""

    def post(self, uri: str, body: bytes, after_plugins: bool = False) -> bytes:
        assert uri == "/tools/lookup"
        uid = body.decode()
        found = [{"ID": "s1", "Type": "Series"}] if uid == SERIES else []
        found += [{"ID": i, "Type": "Instance"} for i in self.instances if uid == sop_of(i)]
        return json.dumps(found).encode()


def sop_of(instance_id: str) -> str:
    return f"{SERIES}.{instance_id[1:]}"


def test_instance_metadata_is_read_from_the_series_entry_once_built() -> None:
    core = LookupCore(["i1", "i2"])
    service = RetrieveMetadata(Configuration(), core)
    computed = service.instance_metadata(request(STUDY, SERIES, sop_of("i2")))
    assert core.tags_calls() == 1
    service.cache.series_json("s1")
    assert core.tags_calls() == 3
    cached = service.instance_metadata(request(STUDY, SERIES, sop_of("i2")))
    assert core.tags_calls() == 3  # no tags read: the dataset came from the entry
    assert isinstance(cached, Response) and isinstance(computed, Response)
    assert cached.body == computed.body
    assert json.loads(cached.body)[0]["00080018"]["Value"] == [sop_of("i2")]


def test_instance_of_another_path_is_not_taken_from_the_entry() -> None:
    core = LookupCore(["i1"])
    service = RetrieveMetadata(Configuration(), core)
    service.cache.series_json("s1")
    with pytest.raises(HttpError) as raised:
        service.instance_metadata(request("9.9.9", SERIES, sop_of("i1")))
    assert raised.value.status == 404
    core.instances.remove("i1")  # deleted: the entry still holds it, the lookup does not
    with pytest.raises(HttpError) as raised:
        service.instance_metadata(request(STUDY, SERIES, sop_of("i1")))
    assert raised.value.status == 404


def test_instance_metadata_without_cache_reads_no_attachment() -> None:
    core = LookupCore(["i1"])
    service = RetrieveMetadata(Configuration(enable_metadata_cache=False), core)
    service.instance_metadata(request(STUDY, SERIES, sop_of("i1")))
    assert not any("attachments" in call for call in core.calls)
