"""WADO-RS Retrieve Metadata and its cache, against live Orthancs (this plugin and the official)."""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from pydicom.uid import generate_uid

from orthanc_dicomweb.dicom.xml_model import from_native_xml
from orthanc_dicomweb.orthanc.storage_ids import INSTANCE_METADATA, PREPARED_ANSWER, SERIES_METADATA
from tests.harness import Orthanc
from tests.helpers import derived, parts_of, store, wait_for

ROLES = ("ct", "mr", "multiframe_rgb", "multiframe_dose", "rtplan")
CACHE = SERIES_METADATA
ANSWER = PREPARED_ANSWER  # of series and studies
KEPT = INSTANCE_METADATA  # an instance's own dataset
IDENTITY = {"Accept-Encoding": "identity"}


@dataclass(frozen=True)
class Uploaded:
    study: str
    series: str
    instances: tuple[str, ...]
    series_id: str
    study_id: str


def upload_series(orthancs: list[Orthanc], files: list[bytes]) -> Uploaded:
    """Store the files of one series in each Orthanc."""
    answers = store(orthancs, files)
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in files]
    return Uploaded(
        study=datasets[0].StudyInstanceUID,
        series=datasets[0].SeriesInstanceUID,
        instances=tuple(d.SOPInstanceUID for d in datasets),
        series_id=answers[0]["ParentSeries"],
        study_id=answers[0]["ParentStudy"],
    )


def series_of(path: Path, count: int = 1, study: str | None = None) -> list[bytes]:
    study, series = study or generate_uid(), generate_uid()
    return [derived(path, study, series, InstanceNumber=n + 1) for n in range(count)]


@pytest.fixture(scope="module")
def both(orthanc: Orthanc, official: Orthanc, test_files: dict[str, Path]) -> dict[str, Uploaded]:
    """One series per role, stored in both Orthancs with the same UIDs."""
    servers = [orthanc, official]
    return {role: upload_series(servers, series_of(test_files[role], 2)) for role in ROLES}


def metadata_url(uploaded: Uploaded, level: str = "series") -> str:
    study = f"/dicom-web/studies/{uploaded.study}"
    if level == "study":
        return f"{study}/metadata"
    series = f"{study}/series/{uploaded.series}"
    if level == "series":
        return f"{series}/metadata"
    return f"{series}/instances/{uploaded.instances[0]}/metadata"


def instance_url(uploaded: Uploaded, sop: str) -> str:
    return f"/dicom-web/studies/{uploaded.study}/series/{uploaded.series}/instances/{sop}/metadata"


def by_sop(datasets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["00080018"]["Value"][0]: d for d in datasets}


# Documented differences: the official plugin lists DataSetTrailingPadding (meaningless
# padding, the core's tags omit it) and, for compressed pixel data, omits PixelData, which we
# give as a BulkDataURI.
DIFFERENT = {"FFFCFFFC"}
COMPRESSED_PIXEL_DATA = "7FE00010"


def comparable(dataset: dict[str, Any]) -> dict[str, Any]:
    """A dataset without the documented differences, BulkDataURIs without their host."""
    result = {}
    for key, attribute in dataset.items():
        if key in DIFFERENT:
            continue
        attribute = dict(attribute)
        if "BulkDataURI" in attribute:
            attribute["BulkDataURI"] = attribute["BulkDataURI"].split("/dicom-web/", 1)[1]
        if attribute.get("vr") == "SQ" and "Value" in attribute:
            attribute["Value"] = [comparable(item) for item in attribute["Value"]]
        result[key] = attribute
    return result


def has_cache(orthanc: Orthanc, series_id: str) -> bool:
    return str(CACHE) in orthanc.get(f"/series/{series_id}/attachments").json()


# --- Same attributes and values as the official plugin ------------------------------------------


@pytest.mark.official
@pytest.mark.parametrize("role", ROLES)
def test_series_metadata_matches_the_official_plugin(
    orthanc: Orthanc, official: Orthanc, both: dict[str, Uploaded], role: str
) -> None:
    ours = orthanc.get(metadata_url(both[role]))
    theirs = official.get(metadata_url(both[role]))
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["Content-Type"].startswith("application/dicom+json")
    mine, reference = by_sop(ours.json()), by_sop(theirs.json())
    assert mine.keys() == reference.keys() == set(both[role].instances)
    for sop, dataset in mine.items():
        ours_, theirs_ = comparable(dataset), comparable(reference[sop])
        if role == "multiframe_rgb":  # RLE: the official plugin 1.7 leaves PixelData out
            assert COMPRESSED_PIXEL_DATA not in theirs_
            assert "BulkDataURI" in ours_.pop(COMPRESSED_PIXEL_DATA)
        assert ours_.keys() == theirs_.keys()
        assert {k: (v, theirs_[k]) for k, v in ours_.items() if theirs_[k] != v} == {}


@pytest.mark.official
def test_study_and_instance_metadata_match_the_official_plugin(
    orthanc: Orthanc, official: Orthanc, both: dict[str, Uploaded]
) -> None:
    for level in ("study", "instance"):
        ours = by_sop(orthanc.get(metadata_url(both["ct"], level)).json())
        theirs = by_sop(official.get(metadata_url(both["ct"], level)).json())
        assert {k: comparable(v) for k, v in ours.items()} == {
            k: comparable(v) for k, v in theirs.items()
        }


# --- The cache ------------------------------------------------------------------------------------


def test_cached_answer_equals_a_fresh_computation_byte_for_byte(
    orthanc: Orthanc, both: dict[str, Uploaded]
) -> None:
    uploaded = both["rtplan"]
    wait_for(lambda: has_cache(orthanc, uploaded.series_id))
    cached = orthanc.get(metadata_url(uploaded)).content
    forget_prepared_answers(orthanc, uploaded)
    fresh = orthanc.get(metadata_url(uploaded)).content  # computed, then stored again
    assert has_cache(orthanc, uploaded.series_id)
    assert cached == fresh == orthanc.get(metadata_url(uploaded)).content


def instance_ids(orthanc: Orthanc, uploaded: Uploaded) -> list[str]:
    return orthanc.get(f"/series/{uploaded.series_id}").json()["Instances"]


def test_instance_metadata_from_the_cache_equals_a_fresh_computation(
    orthanc: Orthanc, both: dict[str, Uploaded]
) -> None:
    for uploaded in both.values():
        urls = [instance_url(uploaded, sop) for sop in uploaded.instances]
        for instance_id in instance_ids(orthanc, uploaded):
            orthanc.delete(f"/instances/{instance_id}/attachments/{KEPT}")
        fresh = [orthanc.get(url).content for url in urls]  # computed, then kept
        kept = [orthanc.get(url).content for url in urls]
        orthanc.post(f"/studies/{uploaded.study_id}/update-dicomweb-cache").raise_for_status()
        assert kept == fresh == [orthanc.get(url).content for url in urls]
        for instance_id in instance_ids(orthanc, uploaded):
            assert str(KEPT) in orthanc.get(f"/instances/{instance_id}/attachments").json()


def test_overwritten_instance_is_not_answered_from_its_old_dataset(
    orthanc_factory, test_files: dict
) -> None:
    overwriting = orthanc_factory({"OverwriteInstances": True})
    original = series_of(test_files["ct"])[0]
    uploaded = upload_series([overwriting], [original])
    url = instance_url(uploaded, uploaded.instances[0])

    def patient_name() -> str:
        return overwriting.get(url).json()[0]["00100010"]["Value"][0]["Alphabetic"]

    assert patient_name() == "CompressedSamples^CT1"
    changed = pydicom.dcmread(io.BytesIO(original))
    changed.PatientName = "Changed^Name"
    buffer = io.BytesIO()
    changed.save_as(buffer, enforce_file_format=True)
    overwriting.post("/instances", data=buffer.getvalue()).raise_for_status()
    assert patient_name() == "Changed^Name"


def test_instance_deleted_after_the_cache_was_built_is_not_found(
    orthanc: Orthanc, test_files: dict
) -> None:
    uploaded = upload_series([orthanc], series_of(test_files["mr"], 2))
    first, second = uploaded.instances
    assert orthanc.post(f"/studies/{uploaded.study_id}/update-dicomweb-cache").ok
    assert orthanc.get(instance_url(uploaded, first)).status_code == 200
    orthanc.delete(f"/instances/{orthanc.post('/tools/lookup', data=first).json()[0]['ID']}")
    assert orthanc.get(instance_url(uploaded, first)).status_code == 404  # the entry has it
    elsewhere = instance_url(uploaded, second).replace(uploaded.study, generate_uid())
    assert orthanc.get(elsewhere).status_code == 404


def test_series_is_cached_when_it_becomes_stable(orthanc: Orthanc, test_files: dict) -> None:
    uploaded = upload_series([orthanc], series_of(test_files["mr"], 3))
    wait_for(lambda: has_cache(orthanc, uploaded.series_id))


def test_added_and_removed_instances_are_seen_at_once(orthanc: Orthanc, test_files: dict) -> None:
    files = series_of(test_files["ct"], 3)
    uploaded = upload_series([orthanc], files[:1])
    assert len(orthanc.get(metadata_url(uploaded)).json()) == 1
    assert has_cache(orthanc, uploaded.series_id)
    orthanc.post("/instances", data=files[1])
    orthanc.post("/instances", data=files[2])
    assert len(orthanc.get(metadata_url(uploaded)).json()) == 3  # before the series is stable
    instance_ids = orthanc.get(f"/series/{uploaded.series_id}").json()["Instances"]
    orthanc.delete(f"/instances/{instance_ids[0]}")
    assert len(orthanc.get(metadata_url(uploaded)).json()) == 2


def forget_prepared_answers(orthanc: Orthanc, uploaded: Uploaded) -> None:
    for resource in (f"/series/{uploaded.series_id}", f"/studies/{uploaded.study_id}"):
        for attachment in (CACHE, ANSWER):
            orthanc.delete(f"{resource}/attachments/{attachment}")


@pytest.mark.parametrize("level", ["series", "study"])
def test_prepared_answers_equal_a_fresh_computation_byte_for_byte(
    orthanc: Orthanc, test_files: dict, level: str
) -> None:
    uploaded = upload_series([orthanc], series_of(test_files["multiframe_dose"], 3))
    url = metadata_url(uploaded, level)
    forget_prepared_answers(orthanc, uploaded)
    fresh = orthanc.get(url, headers=IDENTITY).content  # computed, then kept
    resource = (
        f"/series/{uploaded.series_id}" if level == "series" else f"/studies/{uploaded.study_id}"
    )
    assert str(ANSWER) in orthanc.get(f"{resource}/attachments").json()
    assert orthanc.get(url, headers=IDENTITY).content == fresh
    zipped = orthanc.get(url, headers={"Accept-Encoding": "gzip"}, stream=True)
    # One coding only: the core's own compression.
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.raw.read(decode_content=False)) == fresh


def test_prepared_answers_follow_the_base_the_client_used(
    orthanc: Orthanc, test_files: dict
) -> None:
    uploaded = upload_series([orthanc], series_of(test_files["ct"], 2))
    url = metadata_url(uploaded)
    direct = orthanc.get(url).json()
    proxied = orthanc.get(url, headers={"X-Forwarded-Host": "proxy.example"}).json()
    assert orthanc.get(url).json() == direct
    for mine, theirs in zip(direct, proxied, strict=True):
        assert mine["7FE00010"]["BulkDataURI"].startswith(f"{orthanc.url}/dicom-web/studies/")
        assert theirs["7FE00010"]["BulkDataURI"].startswith("http://proxy.example/dicom-web/")


def test_corrupt_prepared_answer_is_replaced(orthanc: Orthanc, test_files: dict) -> None:
    uploaded = upload_series([orthanc], series_of(test_files["ct"], 2))
    expected = orthanc.get(metadata_url(uploaded, "study")).content
    for resource in (f"/series/{uploaded.series_id}", f"/studies/{uploaded.study_id}"):
        orthanc.put(f"{resource}/attachments/{ANSWER}", data=b'{"Key": 1}\ngarbage')
    assert orthanc.get(metadata_url(uploaded, "study")).content == expected
    assert orthanc.get(metadata_url(uploaded)).content == expected


def test_study_answer_sees_a_new_series_at_once(orthanc: Orthanc, test_files: dict) -> None:
    study = generate_uid()
    first = upload_series([orthanc], series_of(test_files["mr"], 1, study))
    assert len(orthanc.get(metadata_url(first, "study")).json()) == 1
    second = upload_series([orthanc], series_of(test_files["mr"], 2, study))
    sops = set(by_sop(orthanc.get(metadata_url(first, "study")).json()))
    assert sops == set(first.instances) | set(second.instances)


def test_stale_or_corrupt_entry_is_replaced(orthanc: Orthanc, test_files: dict) -> None:
    uploaded = upload_series([orthanc], series_of(test_files["ct"], 2))
    expected = orthanc.get(metadata_url(uploaded)).content
    orthanc.put(f"/series/{uploaded.series_id}/attachments/{CACHE}", data=b"garbage")
    orthanc.delete(f"/series/{uploaded.series_id}/attachments/{ANSWER}")
    assert orthanc.get(metadata_url(uploaded)).content == expected


def test_update_dicomweb_cache_rebuilds_a_study(
    orthanc: Orthanc, both: dict[str, Uploaded]
) -> None:
    uploaded = both["mr"]
    orthanc.delete(f"/series/{uploaded.series_id}/attachments/{CACHE}")
    orthanc.get(metadata_url(uploaded, "study")).raise_for_status()  # prepares answers
    answer = orthanc.post(f"/studies/{uploaded.study_id}/update-dicomweb-cache")
    assert answer.status_code == 200
    assert answer.json()["Series"] == [uploaded.series_id]
    assert has_cache(orthanc, uploaded.series_id)


def test_update_dicomweb_cache_rejects_bad_ids(orthanc: Orthanc) -> None:
    unknown = orthanc.post(
        "/studies/00000000-00000000-00000000-00000000-00000000/update-dicomweb-cache"
    )
    assert unknown.status_code == 404
    assert orthanc.post("/studies/not-an-id/update-dicomweb-cache").status_code == 400
    assert orthanc.get("/studies/not-an-id/update-dicomweb-cache").status_code == 405


def test_disabled_cache_stores_nothing(orthanc_factory, test_files: dict) -> None:
    uncached = orthanc_factory({"DicomWeb": {"EnableMetadataCache": False}})
    uploaded = upload_series([uncached], series_of(test_files["ct"], 2))
    assert len(uncached.get(metadata_url(uploaded)).json()) == 2
    time.sleep(2.5)  # StableAge is 1 s in the tests: the series is stable by now
    assert not has_cache(uncached, uploaded.series_id)
    answer = uncached.post(f"/studies/{uploaded.study_id}/update-dicomweb-cache")
    assert answer.status_code == 409


# --- Answers -------------------------------------------------------------------------------------


def test_study_metadata_holds_every_series(orthanc: Orthanc, test_files: dict) -> None:
    study = generate_uid()
    first = upload_series([orthanc], series_of(test_files["ct"], 2, study))
    second = upload_series([orthanc], series_of(test_files["ct"], 1, study))
    sops = set(by_sop(orthanc.get(metadata_url(first, "study")).json()))
    assert sops == set(first.instances) | set(second.instances)


def test_instance_metadata_is_one_dataset(orthanc: Orthanc, both: dict[str, Uploaded]) -> None:
    datasets = orthanc.get(metadata_url(both["ct"], "instance")).json()
    assert len(datasets) == 1
    assert datasets[0]["00080018"]["Value"] == [both["ct"].instances[0]]
    assert datasets[0]["7FE00010"]["BulkDataURI"].startswith("http://127.0.0.1:")


def test_xml_answer_is_a_multipart_of_native_models(
    orthanc: Orthanc, both: dict[str, Uploaded]
) -> None:
    accept = 'multipart/related; type="application/dicom+xml"'
    answer = orthanc.get(metadata_url(both["rtplan"]), headers={"Accept": accept})
    assert answer.status_code == 200
    content_type = answer.headers["Content-Type"]
    assert "application/dicom+xml" in content_type
    from_xml = by_sop([from_native_xml(part) for part in parts_of(answer)])
    from_json = by_sop(orthanc.get(metadata_url(both["rtplan"])).json())
    assert from_xml.keys() == from_json.keys()
    for sop, dataset in from_json.items():
        assert from_xml[sop]["300A00B0"] == dataset["300A00B0"]  # BeamSequence


def test_bulk_data_uris_follow_forwarded_headers_and_public_root(
    orthanc: Orthanc, orthanc_factory, both: dict[str, Uploaded], test_files: dict
) -> None:
    headers = {"X-Forwarded-Host": "proxy.example", "X-Forwarded-Proto": "https"}
    dataset = orthanc.get(metadata_url(both["ct"]), headers=headers).json()[0]
    assert dataset["7FE00010"]["BulkDataURI"].startswith("https://proxy.example/dicom-web/studies/")
    public = orthanc_factory({"DicomWeb": {"PublicRoot": "https://pacs.example/dw/"}})
    uploaded = upload_series([public], series_of(test_files["ct"], 1))
    dataset = public.get(metadata_url(uploaded)).json()[0]
    assert dataset["7FE00010"]["BulkDataURI"].startswith("https://pacs.example/dw/studies/")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/dicom-web/studies/1.2.3.999/metadata", 404),
        ("/dicom-web/studies/1.2.3.999/series/1.2.3.998/metadata", 404),
        ("/dicom-web/studies/1.2.3.999/series/1.2.3.998/instances/1.2.9/metadata", 404),
        ("/dicom-web/studies/abc/metadata", 400),
        ("/dicom-web/studies/1.2.3/series/1..2/metadata", 400),
        (f"/dicom-web/studies/{'1' * 65}/metadata", 400),
    ],
)
def test_bad_resources_get_clear_errors(orthanc: Orthanc, path: str, status: int) -> None:
    answer = orthanc.get(path)
    assert answer.status_code == status
    assert answer.json()["HttpStatus"] == status
    assert answer.json()["Message"]


def test_series_of_another_study_is_not_found(orthanc: Orthanc, both: dict[str, Uploaded]) -> None:
    wrong = f"/dicom-web/studies/{both['mr'].study}/series/{both['ct'].series}/metadata"
    assert orthanc.get(wrong).status_code == 404
    instance = f"/series/{both['ct'].series}/instances/{both['ct'].instances[0]}/metadata"
    assert orthanc.get(f"/dicom-web/studies/{both['mr'].study}{instance}").status_code == 404
    assert orthanc.get(f"/dicom-web/studies/{both['ct'].study}{instance}").status_code == 200


@pytest.mark.parametrize(
    "accept",
    [
        "image/jpeg",
        'multipart/related; type="application/dicom"',
        "multipart/related",
        "multipart/related; type=application/dicom+xml; transfer-syntax=1.2.840.10008.1.2.1",
        "toto, tata",
    ],
)
def test_unsupported_accept_is_400_as_in_the_official_plugin(
    orthanc: Orthanc, both: dict[str, Uploaded], accept: str
) -> None:
    answer = orthanc.get(metadata_url(both["ct"]), headers={"Accept": accept})
    assert answer.status_code == 400
    assert "dicom+json" in answer.json()["Message"]


@pytest.mark.parametrize(
    "accept",
    ["application/dicom+xml, application/json", "toto, application/dicom+json", "application/json"],
)
def test_json_wins_and_junk_accept_items_are_skipped(
    orthanc: Orthanc, both: dict[str, Uploaded], accept: str
) -> None:
    answer = orthanc.get(metadata_url(both["ct"]), headers={"Accept": accept})
    assert answer.status_code == 200
    assert len(answer.json()) == 2


# --- Modes ---------------------------------------------------------------------------------------

MODES = {
    "DicomWeb": {
        "StudiesMetadata": "MainDicomTags",
        "SeriesMetadata": "Extrapolate",
        "SeriesMetadataExtrapolatedTags": ["Rows", "PixelSpacing", "ImageType", "AcquisitionDate"],
    }
}


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory, test_files: dict) -> Iterator[list[Orthanc]]:
    pair = [
        Orthanc(tmp_path_factory.mktemp("modes"), MODES).start(),
        Orthanc(tmp_path_factory.mktemp("modes-official"), MODES, official=True).start(),
    ]
    yield pair
    for instance in pair:
        instance.stop()


@pytest.mark.official
@pytest.mark.parametrize("level", ["study", "series"])
def test_main_dicom_tags_and_extrapolate_modes_match_the_official_plugin(
    modes: list[Orthanc], test_files: dict, level: str
) -> None:
    ours, official = modes
    uploaded = upload_series(modes, series_of(test_files["ct"], 3))
    mine = by_sop(ours.get(metadata_url(uploaded, level)).json())
    reference = by_sop(official.get(metadata_url(uploaded, level)).json())
    for dataset in reference.values():
        # The index has no SpecificCharacterSet: 1.7 names DefaultEncoding's, we none.
        del dataset["00080005"]
    assert {k: comparable(v) for k, v in mine.items()} == {
        k: comparable(v) for k, v in reference.items()
    }
    if level == "series":
        assert all("00280010" in dataset for dataset in mine.values())  # extrapolated Rows
    else:
        assert all("00280010" not in dataset for dataset in mine.values())


# --- dicomweb-client ----------------------------------------------------------------------------


def test_dicomweb_client_reads_metadata(orthanc: Orthanc, both: dict[str, Uploaded]) -> None:
    client = DICOMwebClient(f"{orthanc.url}/dicom-web")
    uploaded = both["multiframe_dose"]
    series = client.retrieve_series_metadata(uploaded.study, uploaded.series)
    study = client.retrieve_study_metadata(uploaded.study)
    instance = client.retrieve_instance_metadata(
        uploaded.study, uploaded.series, uploaded.instances[0]
    )
    assert len(series) == len(study) == 2
    dataset = pydicom.Dataset.from_json(instance, bulk_data_uri_handler=lambda *_: b"")
    assert dataset.SOPInstanceUID == uploaded.instances[0]
    assert dataset.NumberOfFrames > 1
