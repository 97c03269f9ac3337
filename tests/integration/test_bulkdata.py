"""WADO-RS Retrieve Bulkdata against a live Orthanc: the BulkDataURIs of metadata answers."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from tests.harness import Orthanc
from tests.helpers import parts_of

OCTET_STREAM = "application/octet-stream"


def with_new_uids(dataset: Dataset) -> bytes:
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def with_nested_values(path: Path) -> Dataset:
    """The CT with an icon (nested pixel data) and a nested text value."""
    dataset = pydicom.dcmread(path)
    icon = Dataset()
    icon.Rows, icon.Columns, icon.BitsAllocated = 2, 2, 8
    icon.add_new(0x7FE00010, "OB", bytes(range(1, 5)))
    radiopharmaceutical = Dataset()
    radiopharmaceutical.RadiopharmaceuticalStartTime = "101010.00"
    dataset.IconImageSequence = Sequence([icon])
    dataset.RadiopharmaceuticalInformationSequence = Sequence([radiopharmaceutical])
    return dataset


@pytest.fixture(scope="module")
def stored(orthanc: Orthanc, test_files: dict[str, Path]) -> dict[str, tuple[Dataset, str]]:
    """role -> (the dataset stored, the instance's metadata URL)."""
    datasets = {
        "ct": with_nested_values(test_files["ct"]),
        "rle": pydicom.dcmread(test_files["multiframe_rgb"]),
        "bigendian": pydicom.dcmread(test_files["mr_bigendian"]),
    }
    result = {}
    for role, dataset in datasets.items():
        orthanc.post("/instances", data=with_new_uids(dataset)).raise_for_status()
        url = (
            f"/dicom-web/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
            f"/instances/{dataset.SOPInstanceUID}"
        )
        result[role] = (dataset, url)
    return result


def metadata(orthanc: Orthanc, url: str) -> dict:
    return orthanc.get(url + "/metadata").json()[0]


def octet_parts(answer: requests.Response) -> list[bytes]:
    return parts_of(answer, OCTET_STREAM)


def test_every_bulk_data_uri_of_the_metadata_answers_the_value(
    orthanc: Orthanc, stored: dict
) -> None:
    dataset, url = stored["ct"]
    answer = metadata(orthanc, url)
    private = answer["00431028"]["BulkDataURI"]
    assert private.endswith(f"{url}/bulk/00431028")
    assert octet_parts(orthanc.session.get(private)) == [dataset[0x00431028].value]
    assert octet_parts(orthanc.session.get(answer["7FE00010"]["BulkDataURI"])) == [
        dataset.PixelData
    ]


def test_nested_paths_reach_values_inside_sequences(orthanc: Orthanc, stored: dict) -> None:
    _, url = stored["ct"]
    icon = metadata(orthanc, url)["00880200"]["Value"][0]["7FE00010"]["BulkDataURI"]
    assert icon.endswith("/bulk/00880200/1/7fe00010")
    assert octet_parts(orthanc.session.get(icon)) == [bytes(range(1, 5))]
    text = orthanc.get(f"{url}/bulk/00540016/1/00181072")
    assert octet_parts(text) == [b"101010.00 "]  # the stored value, padding included


def test_compressed_multi_frame_pixel_data_is_one_part_per_frame(
    orthanc: Orthanc, stored: dict
) -> None:
    dataset, url = stored["rle"]
    frames = list(generate_frames(dataset.PixelData, number_of_frames=dataset.NumberOfFrames))
    uri = metadata(orthanc, url)["7FE00010"]["BulkDataURI"]
    assert octet_parts(orthanc.session.get(uri)) == frames
    single = orthanc.session.get(uri, headers={"Accept": OCTET_STREAM})
    assert single.status_code == 400
    assert "2 frames" in single.json()["Message"]


def test_big_endian_pixel_data_is_answered(orthanc: Orthanc, stored: dict) -> None:
    dataset, url = stored["bigendian"]
    (value,) = octet_parts(orthanc.get(f"{url}/bulk/7FE00010"))
    assert len(value) == len(dataset.PixelData)


def test_single_part_when_asked(orthanc: Orthanc, stored: dict) -> None:
    dataset, url = stored["ct"]
    answer = orthanc.get(f"{url}/bulk/7FE00010", headers={"Accept": OCTET_STREAM})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == OCTET_STREAM
    assert answer.content == dataset.PixelData


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        'multipart/related; type="application/octet-stream"',
        'multipart/related; type="*/*"',
        "multipart/related; type=application/octet-stream; transfer-syntax=*",
    ],
)
def test_multipart_is_the_default(orthanc: Orthanc, stored: dict, accept: str | None) -> None:
    dataset, url = stored["ct"]
    headers = {"Accept": accept} if accept else {}
    assert octet_parts(orthanc.get(f"{url}/bulk/00431028", headers=headers)) == [
        dataset[0x00431028].value
    ]


def test_range_of_a_text_value_is_a_206(orthanc: Orthanc, stored: dict) -> None:
    _, url = stored["ct"]
    headers = {"Accept": OCTET_STREAM, "Range": "bytes=2-5"}
    answer = orthanc.get(f"{url}/bulk/00540016/1/00181072", headers=headers)
    assert answer.status_code == 206
    assert answer.headers["Content-Range"] == "bytes 2-5/10"
    assert answer.content == b"1010"
    suffix = orthanc.get(
        f"{url}/bulk/00540016/1/00181072", headers={"Accept": OCTET_STREAM, "Range": "bytes=-3"}
    )
    assert (suffix.status_code, suffix.content) == (206, b"00 ")


def test_binary_range_is_answered_whole_as_the_runtime_allows(
    orthanc: Orthanc, stored: dict
) -> None:
    dataset, url = stored["ct"]
    headers = {"Accept": OCTET_STREAM, "Range": "bytes=0-99"}
    answer = orthanc.get(f"{url}/bulk/7FE00010", headers=headers)
    assert answer.status_code == 200
    assert answer.content == dataset.PixelData


@pytest.mark.parametrize("header", ["bytes=99999999-", "bytes=-0"])
def test_unsatisfiable_range_is_416(orthanc: Orthanc, stored: dict, header: str) -> None:
    dataset, url = stored["ct"]
    answer = orthanc.get(f"{url}/bulk/7FE00010", headers={"Range": header})
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == f"bytes */{len(dataset.PixelData)}"


@pytest.mark.parametrize(
    ("suffix", "status"),
    [
        ("bulk/7FE0001", 400),
        ("bulk/00540016/1", 400),
        ("bulk/00540016/0/00181072", 400),  # items are counted from 1
        ("bulk/00540016/x/00181072", 400),
        ("bulk/00540016", 400),  # a sequence
        ("bulk/00540016/5/00181072", 404),
        ("bulk/00431099", 404),
    ],
)
def test_bad_paths_get_clear_errors(
    orthanc: Orthanc, stored: dict, suffix: str, status: int
) -> None:
    _, url = stored["ct"]
    answer = orthanc.get(f"{url}/{suffix}")
    assert answer.status_code == status
    assert answer.json()["HttpStatus"] == status


def test_unknown_instance_and_malformed_uid(orthanc: Orthanc, stored: dict) -> None:
    _, url = stored["ct"]
    unknown = url.rsplit("/", 1)[0] + "/1.2.3.4.5.6"
    assert orthanc.get(f"{unknown}/bulk/7FE00010").status_code == 404
    assert orthanc.get(url.rsplit("/", 1)[0] + "/1.2.x/bulk/7FE00010").status_code == 400


@pytest.mark.parametrize(
    "accept",
    [
        "image/jpeg",
        "multipart/nope",
        'multipart/related; type="  application/octet-stream"',
        "multipart/related; range=",
    ],
)
def test_unsupported_accept_is_400_as_in_the_official_plugin(
    orthanc: Orthanc, stored: dict, accept: str
) -> None:
    _, url = stored["ct"]
    answer = orthanc.get(f"{url}/bulk/7FE00010", headers={"Accept": accept})
    assert answer.status_code == 400


def test_tags_in_paths_may_have_a_comma(orthanc: Orthanc, stored: dict) -> None:
    dataset, url = stored["ct"]
    answer = orthanc.get(f"{url}/bulk/0010,0010", headers={"Accept": OCTET_STREAM})
    assert answer.status_code == 200
    assert answer.content.rstrip(b" ") == str(dataset.PatientName).encode()


def test_dicomweb_client_retrieves_bulk_data(orthanc: Orthanc, stored: dict) -> None:
    # dicomweb-client sends `Host` without the port, so its own metadata calls would get
    # port-less BulkDataURIs; the URIs are read here with a client that sends a correct Host.
    client = DICOMwebClient(f"{orthanc.url}/dicom-web")
    dataset, url = stored["ct"]
    uri = metadata(orthanc, url)["7FE00010"]["BulkDataURI"]
    assert client.retrieve_bulkdata(uri) == [dataset.PixelData]
    rle, rle_url = stored["rle"]
    uri = metadata(orthanc, rle_url)["7FE00010"]["BulkDataURI"]
    assert len(client.retrieve_bulkdata(uri)) == rle.NumberOfFrames
