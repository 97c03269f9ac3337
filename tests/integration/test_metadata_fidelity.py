"""Metadata as the official plugin writes it, the cache's validity after an instance is stored
again, and a database shared with the official plugin (live Orthancs)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from orthanc_dicomweb.orthanc.storage_ids import OFFICIAL_SERIES_METADATA, SERIES_METADATA
from orthanc_dicomweb.services.metadata.cache import pack_entry
from tests.harness import PYDICOM_FILES, Orthanc
from tests.integration.test_wado_metadata import (
    Uploaded,
    comparable,
    metadata_url,
    series_of,
    upload_series,
)

CHARSET_FILES = PYDICOM_FILES.parent / "charset_files"


def dicom_bytes(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# --- As the official plugin (Orthanc's suite) ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "charset"),
    [
        ("chrFren.dcm", ["ISO_IR 100"]),
        ("chrH31.dcm", ["ISO 2022 IR 87"]),  # "\ISO 2022 IR 87": the empty value left out
        ("chrH32.dcm", ["ISO 2022 IR 13", "ISO 2022 IR 87"]),  # the core reads "¥" there
        ("chrX1.dcm", ["ISO_IR 192"]),
    ],
)
def test_metadata_keeps_the_files_specific_character_set(
    orthanc: Orthanc, name: str, charset: list[str]
) -> None:
    stored = pydicom.dcmread(CHARSET_FILES / name)
    orthanc.post("/instances", data=(CHARSET_FILES / name).read_bytes()).raise_for_status()
    url = (
        f"/dicom-web/studies/{stored.StudyInstanceUID}/series/{stored.SeriesInstanceUID}"
        f"/instances/{stored.SOPInstanceUID}/metadata"
    )
    for level_url in (url, url.rsplit("/instances/", 1)[0] + "/metadata"):
        datasets = orthanc.get(level_url).json()
        dataset = next(d for d in datasets if d["00080018"]["Value"] == [stored.SOPInstanceUID])
        assert dataset["00080005"] == {"vr": "CS", "Value": charset}


def test_empty_values_are_the_vr_alone(orthanc: Orthanc) -> None:
    """Orthanc's suite, test_issue_195: an empty UN value has neither Value nor BulkDataURI."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    dataset.SOPInstanceUID, dataset.StudyInstanceUID = generate_uid(), generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.StudyDescription = ""
    dataset.add_new(0x00084565, "UN", b"")
    dataset.add_new(0x00084567, "UN", b"B\0")
    orthanc.post("/instances", data=dicom_bytes(dataset)).raise_for_status()
    url = (
        f"/dicom-web/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
        f"/instances/{dataset.SOPInstanceUID}"
    )
    answer = orthanc.get(f"{url}/metadata").json()[0]
    assert answer["00081030"] == {"vr": "LO"}
    assert answer["00084565"] == {"vr": "UN"}
    assert answer["00084567"]["BulkDataURI"].endswith(f"{url}/bulk/00084567")


def test_bulk_data_uris_inside_sequences_count_items_from_1(
    orthanc: Orthanc, test_files: dict
) -> None:
    """Orthanc's suite, test_wado_hierarchy_bulk: `.../bulk/00880200/2/7fe00010` is the pixel
    data of the icon of the second item, as the official plugin writes and reads it."""
    dataset = pydicom.dcmread(io.BytesIO(series_of(test_files["ct"])[0]))
    icons = []
    for first in (1, 5):
        icon = Dataset()
        icon.Rows, icon.Columns, icon.BitsAllocated = 2, 2, 8
        icon.add_new(0x7FE00010, "OB", bytes(range(first, first + 4)))
        icons.append(icon)
    dataset.IconImageSequence = Sequence(icons)
    uploaded = upload_series([orthanc], [dicom_bytes(dataset)])
    answer = orthanc.get(metadata_url(uploaded)).json()[0]
    assert answer["7FE00010"]["BulkDataURI"].endswith("/bulk/7fe00010")
    for number, item in enumerate(answer["00880200"]["Value"], start=1):
        uri = item["7FE00010"]["BulkDataURI"]
        assert uri.endswith(f"/instances/{dataset.SOPInstanceUID}/bulk/00880200/{number}/7fe00010")
        value = orthanc.session.get(uri, headers={"Accept": "application/octet-stream"})
        assert value.content == bytes(icons[number - 1].PixelData)
    missing = uri.replace("/2/", "/3/")
    assert orthanc.session.get(missing).status_code == 404


# --- An instance stored again -------------------------------------------------------------------


def comments(orthanc: Orthanc, url: str) -> set[str]:
    return {dataset["00204000"]["Value"][0] for dataset in orthanc.get(url).json()}


def store_again(orthanc: Orthanc, original: bytes, how: str) -> None:
    """The instance with the same UIDs and new content, as a site corrects one."""
    changed = pydicom.dcmread(io.BytesIO(original))
    changed.ImageComments = "corrected"
    if how == "delete, then store":
        sop = changed.SOPInstanceUID
        orthanc.delete(f"/instances/{orthanc.post('/tools/lookup', data=sop).json()[0]['ID']}")
    orthanc.post("/instances", data=dicom_bytes(changed)).raise_for_status()


@pytest.mark.parametrize("restart", [False, True], ids=["running", "restarted"])
@pytest.mark.parametrize("how", ["OverwriteInstances", "delete, then store"])
def test_series_and_study_metadata_see_an_instance_stored_again(
    orthanc_factory, test_files: dict, how: str, restart: bool
) -> None:
    """The cache was keyed on instance ids: an instance stored again (same id) kept its old
    values in series and study metadata until the series was stable again, or forever if
    Orthanc stopped before. The key holds the stored files' uuids now (listed again when the
    change log shows a store: `series_members`)."""
    # No background rebuild: StableAge far away.
    orthanc = orthanc_factory({"OverwriteInstances": True, "StableAge": 3600})
    files = series_of(test_files["ct"], 3)
    uploaded = upload_series([orthanc], files)
    urls = [metadata_url(uploaded), metadata_url(uploaded, "study")]
    assert all(comments(orthanc, url) == {"Uncompressed"} for url in urls)  # cached
    store_again(orthanc, files[1], how)
    if restart:
        orthanc.restart()
    for url in urls:
        assert comments(orthanc, url) == {"Uncompressed", "corrected"}
    qido = orthanc.get(
        f"/dicom-web/studies/{uploaded.study}/series/{uploaded.series}/instances",
        params={"includefield": "ImageComments"},
    ).json()
    assert {dataset["00204000"]["Value"][0] for dataset in qido} == {"Uncompressed", "corrected"}


# --- A database shared with the official plugin -------------------------------------------------


def foreign_cache(uploaded: Uploaded) -> bytes:
    """What a newer official plugin keeps in series attachment 4301 (its own format)."""
    return b"2;" + b"0" * 32 + b";" + gzip.compress(json.dumps([{"x": uploaded.series}]).encode())


def test_a_database_of_the_official_plugin_is_served_and_its_cache_left_alone(
    tmp_path: Path, test_files: dict
) -> None:
    official = Orthanc(tmp_path, official=True).start()
    try:
        uploaded = upload_series([official], series_of(test_files["rtplan"], 2))
        expected = [comparable(d) for d in official.get(metadata_url(uploaded, "study")).json()]
        theirs = foreign_cache(uploaded)
        official.put(
            f"/series/{uploaded.series_id}/attachments/{OFFICIAL_SERIES_METADATA}", data=theirs
        ).raise_for_status()
    finally:
        official.stop()
    ours = Orthanc(tmp_path).start()
    try:
        for level in ("series", "study"):
            answer = ours.get(metadata_url(uploaded, level)).json()
            assert [comparable(d) for d in answer] == expected
        series = f"/series/{uploaded.series_id}/attachments"
        assert str(SERIES_METADATA) in ours.get(series).json()
        ours.post(f"/studies/{uploaded.study_id}/update-dicomweb-cache").raise_for_status()
        assert ours.get(f"{series}/{OFFICIAL_SERIES_METADATA}/data").content == theirs
    finally:
        ours.stop()
    official = Orthanc(tmp_path, official=True).start()  # and back: ours are ignored
    try:
        answer = official.get(metadata_url(uploaded, "study")).json()
        assert [comparable(d) for d in answer] == expected
    finally:
        official.stop()


def test_our_old_entry_in_the_official_plugins_number_is_removed_at_rebuild(
    orthanc: Orthanc, test_files: dict
) -> None:
    """Versions before 2026-12 kept entries in 4301, where a newer official plugin would read
    them as its own cache."""
    uploaded = upload_series([orthanc], series_of(test_files["mr"]))
    legacy = f"/series/{uploaded.series_id}/attachments/{OFFICIAL_SERIES_METADATA}"
    orthanc.put(legacy, data=pack_entry("old key", "BulkDataURI", [])).raise_for_status()
    orthanc.post(f"/studies/{uploaded.study_id}/update-dicomweb-cache").raise_for_status()
    assert orthanc.get(legacy + "/data").status_code == 404
