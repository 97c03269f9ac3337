"""STOW-RS Store Instances against live Orthancs: this plugin, and the official one as a peer."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.encaps import generate_frames
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from benchmarks.measure import MemorySampler
from orthanc_dicomweb.dicom.assembly import read_identity
from orthanc_dicomweb.dicom.xml_model import to_native_xml
from orthanc_dicomweb.http.multipart import encode_multipart
from tests.harness import Orthanc
from tests.helpers import derived

BOUNDARY = "stow-test-boundary"
DICOM_TYPE = f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'
RETRIEVE_URL, FAILED, REFERENCED = "00081190", "00081198", "00081199"
SOP_INSTANCE, WARNING, FAILURE = "00081155", "00081196", "00081197"


def derive(
    path: Path,
    study: str | None = None,
    *,
    series: str | None = None,
    drop: Iterable[str] = (),
    **values: Any,
) -> bytes:
    """A copy of a test file of the STOW-RS tests' patient, with fresh UIDs (or the given
    study/series), as Part 10 bytes."""
    return derived(path, study, series, drop=drop, **({"PatientID": "STOW-TEST"} | values))


def dicom_body(instances: Iterable[bytes], content_type: str | None = "application/dicom") -> bytes:
    headers = {"Content-Type": content_type} if content_type else None
    parts = [(data, content_type or "", headers) for data in instances]
    if content_type:
        return encode_multipart([(data, content_type, None) for data, _, _ in parts], BOUNDARY)
    chunks = [b"--" + BOUNDARY.encode() + b"\r\n\r\n" + data + b"\r\n" for data in instances]
    return b"".join(chunks) + b"--" + BOUNDARY.encode() + b"--\r\n"


def stow(
    orthanc: Orthanc, body: bytes, study: str | None = None, content_type: str = DICOM_TYPE, **kw
) -> requests.Response:
    path = "/dicom-web/studies" + (f"/{study}" if study else "")
    headers = {"Content-Type": content_type, **kw.pop("headers", {})}
    return orthanc.post(path, data=body, headers=headers, **kw)


def uid_of(data: bytes) -> str:
    return read_identity(memoryview(data)).sop_instance


def uid_of_dataset(data: bytes) -> str:
    """The SOP Instance UID of a file that may lack other identifiers."""
    return pydicom.dcmread(io.BytesIO(data), force=True).SOPInstanceUID


def is_stored(orthanc: Orthanc, sop_instance: str) -> bool:
    found = orthanc.post(
        "/tools/find", json={"Level": "Instance", "Query": {"SOPInstanceUID": sop_instance}}
    )
    return bool(found.json())


def items(answer: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return answer.get(key, {}).get("Value", [])


def value(item: dict[str, Any], key: str) -> Any:
    return item[key]["Value"][0]


# --- Storing application/dicom ----------------------------------------------------------------


def test_stores_instances_and_answers_the_dicom_json_model(orthanc: Orthanc, test_files) -> None:
    study = generate_uid()
    instances = [derive(test_files["ct"], study), derive(test_files["mr"], study)]
    answer = stow(orthanc, dicom_body(instances))
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/dicom+json"
    result = answer.json()
    assert FAILED not in result
    assert result["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}
    assert value(result, RETRIEVE_URL) == f"{orthanc.url}/dicom-web/studies/{study}"
    referenced = items(result, REFERENCED)
    assert [value(item, SOP_INSTANCE) for item in referenced] == [uid_of(i) for i in instances]
    for item, data in zip(referenced, instances, strict=True):
        identity = read_identity(memoryview(data))
        assert value(item, "00081150") == identity.sop_class
        assert value(item, RETRIEVE_URL) == (
            f"{orthanc.url}/dicom-web/studies/{study}/series/{identity.series}"
            f"/instances/{identity.sop_instance}"
        )
        assert WARNING not in item
        assert is_stored(orthanc, identity.sop_instance)


def test_orthanc_id_computed_from_the_header_is_the_core_one(orthanc: Orthanc, test_files) -> None:
    data = derive(test_files["mr_bigendian"], PatientID="  padded id")
    core_answer = orthanc.post("/instances", data=data).json()
    assert read_identity(memoryview(data)).orthanc_id() == core_answer["ID"]


@pytest.mark.parametrize(
    "content_type",
    [
        f"multipart/related; type=application/dicom; boundary={BOUNDARY}",
        f'Multipart/Related;boundary={BOUNDARY};type="application/dicom";'
        ' transfer-syntax="1.2.840.10008.1.2.1"; start="<first>"',
        f"multipart/related; boundary={BOUNDARY}",  # no type: application/dicom
    ],
)
def test_content_type_variants_are_accepted(orthanc: Orthanc, test_files, content_type) -> None:
    data = derive(test_files["ct"])
    answer = stow(orthanc, dicom_body([data]), content_type=content_type)
    assert answer.status_code == 200, answer.text
    assert is_stored(orthanc, uid_of(data))


def test_parts_without_content_type_and_crlf_boundary_look_alikes(
    orthanc: Orthanc, test_files
) -> None:
    tricky = f"\r\n--{BOUNDARY}X\r\n--{BOUNDARY}-\r\n"
    instances = [derive(test_files["mr"], PatientComments=tricky), derive(test_files["rgb"])]
    answer = stow(orthanc, dicom_body(instances, content_type=None))
    assert answer.status_code == 200, answer.text
    assert all(is_stored(orthanc, uid_of(data)) for data in instances)


def test_a_body_written_by_hand_with_preamble_headers_and_epilogue_is_stored(
    orthanc: Orthanc, test_files
) -> None:
    """A body encoded without the plugin's encoder (which the other tests use), as RFC 2046
    allows it: a quoted boundary with "=", a preamble, more part headers, an epilogue."""
    boundary = "==Part_0.123=="
    instances = [derive(test_files["ct"]), derive(test_files["mr"])]
    body = b"This is a preamble.\r\n"
    for number, data in enumerate(instances):
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n".encode()
        body += f"Content-ID: <part{number}>\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\nAn epilogue.\r\n".encode()
    content_type = f'multipart/related; type="application/dicom"; boundary="{boundary}"'
    answer = stow(orthanc, body, content_type=content_type)
    assert answer.status_code == 200, answer.text
    assert all(is_stored(orthanc, uid_of(data)) for data in instances)


def test_every_kind_of_test_file_is_stored(orthanc: Orthanc, test_files) -> None:
    instances = [derive(path) for path in test_files.values()]
    answer = stow(orthanc, dicom_body(instances))
    assert answer.status_code == 200, answer.text
    assert len(items(answer.json(), REFERENCED)) == len(instances)


def test_resending_is_idempotent_with_a_warning(orthanc: Orthanc, test_files) -> None:
    instances = [derive(test_files["ct"]), derive(test_files["mr"])]
    first = stow(orthanc, dicom_body(instances))
    again = stow(orthanc, dicom_body(instances))
    assert first.status_code == again.status_code == 200
    first_items, again_items = items(first.json(), REFERENCED), items(again.json(), REFERENCED)
    assert [value(i, RETRIEVE_URL) for i in first_items] == [
        value(i, RETRIEVE_URL) for i in again_items
    ]
    assert all(value(item, WARNING) == 0xB006 for item in again_items)


def test_study_url_refuses_instances_of_other_studies(orthanc: Orthanc, test_files) -> None:
    study = generate_uid()
    mine, other = derive(test_files["ct"], study), derive(test_files["mr"])
    answer = stow(orthanc, dicom_body([other, mine]), study=study)
    assert answer.status_code == 202, answer.text
    result = answer.json()
    assert value(result, RETRIEVE_URL).endswith(f"/studies/{study}")
    (failure,) = items(result, FAILED)
    assert value(failure, SOP_INSTANCE) == uid_of(other)
    assert value(failure, FAILURE) == 0x0110  # Processing failure, as the official plugin
    assert [value(i, SOP_INSTANCE) for i in items(result, REFERENCED)] == [uid_of(mine)]
    assert is_stored(orthanc, uid_of(mine))
    assert not is_stored(orthanc, uid_of(other))


@pytest.mark.parametrize("study", [None, "nope"])  # a path that is no UID matches nothing
def test_nothing_stored_answers_409_with_json(orthanc: Orthanc, test_files, study) -> None:
    other = derive(test_files["ct"])
    answer = stow(orthanc, dicom_body([other]), study=study or generate_uid())
    assert answer.status_code == 409
    assert answer.headers["Content-Type"] == "application/dicom+json"
    result = answer.json()
    assert list(result) == ["00080005", FAILED, REFERENCED]  # no RetrieveURL: nothing stored
    assert value(items(result, FAILED)[0], FAILURE) == 0x0110
    assert not is_stored(orthanc, uid_of(other))


def only_sop_uids() -> bytes:
    """A Part 10 file holding nothing but its SOP Class and SOP Instance UIDs."""
    dataset = pydicom.Dataset()
    dataset.SOPClassUID, dataset.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.4", generate_uid()
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("kind", "listed"),
    [("no SOP class", False), ("no study", True), ("only SOP UIDs", True), ("not DICOM", False)],
)
def test_bad_syntax_that_stores_nothing_is_400(orthanc: Orthanc, test_files, kind, listed) -> None:
    """As the official plugin: an instance is listed in FailedSOPSequence (0xC000) only when
    both its SOP Class and SOP Instance UIDs could be read; a file that is not DICOM is not."""
    data = {
        "no SOP class": lambda: derive(test_files["mr"], drop=["SOPClassUID"]),
        "no study": lambda: derive(test_files["mr"], drop=["StudyInstanceUID"]),
        "only SOP UIDs": only_sop_uids,
        "not DICOM": lambda: b"# not DICOM\n(0010,0010) PN A\n",
    }[kind]()
    answer = stow(orthanc, dicom_body([data]))
    assert answer.status_code == 400, answer.text
    result = answer.json()
    assert "Value" not in result[REFERENCED]
    if listed:
        assert list(result) == ["00080005", FAILED, REFERENCED]
        (failure,) = items(result, FAILED)
        assert value(failure, FAILURE) == 0xC000
        assert value(failure, SOP_INSTANCE) == uid_of_dataset(data)
    else:
        assert list(result) == ["00080005", REFERENCED]


def test_forwarded_headers_shape_the_retrieve_urls(orthanc: Orthanc, test_files) -> None:
    headers = {"X-Forwarded-Host": "pacs.example.org", "X-Forwarded-Proto": "https"}
    answer = stow(orthanc, dicom_body([derive(test_files["ct"])]), headers=headers)
    assert value(answer.json(), RETRIEVE_URL).startswith("https://pacs.example.org/dicom-web/")


# --- Bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", DICOM_TYPE, 400),
        (b"--x\r\n\r\nabc\r\n--x--\r\n", 'multipart/related; type="application/dicom"', 400),
        (b"--x\r\n\r\nabc\r\n--x--\r\n", DICOM_TYPE, 400),  # wrong boundary
        (f"--{BOUNDARY}--\r\n".encode(), DICOM_TYPE, 400),  # no part at all
        (b"abc", "application/dicom", 415),
        (b"abc", 'multipart/related; type="image/jpeg"; boundary=x', 415),
        (b"abc", "not a media type", 415),
    ],
)
def test_unusable_requests_are_refused(orthanc: Orthanc, body, content_type, status) -> None:
    answer = stow(orthanc, body, content_type=content_type)
    assert answer.status_code == status
    assert answer.json()["HttpStatus"] == status
    assert answer.json()["Message"]


def test_missing_content_type_is_415(orthanc: Orthanc) -> None:
    answer = orthanc.post("/dicom-web/studies", data=b"abc", headers={"Content-Type": ""})
    assert answer.status_code == 415


def test_unacceptable_answer(orthanc: Orthanc, test_files) -> None:
    body = dicom_body([derive(test_files["ct"])])
    answer = stow(orthanc, body, headers={"Accept": "text/html"})
    assert answer.status_code == 406


def test_truncated_multipart_stores_nothing(orthanc: Orthanc, test_files) -> None:
    instances = [derive(test_files["ct"]), derive(test_files["mr"])]
    body = dicom_body(instances)
    answer = stow(orthanc, body[: len(body) - 2000])
    assert answer.status_code == 400
    assert "Truncated" in answer.json()["Message"]
    assert not any(is_stored(orthanc, uid_of(data)) for data in instances)


def test_bad_parts_fail_alone_and_the_others_are_stored(orthanc: Orthanc, test_files) -> None:
    good = derive(test_files["ct"])
    no_uid = derive(test_files["mr"], drop=["SOPInstanceUID"])
    huge = os.urandom(1024) * (48 * 1024)  # 48 MB of noise
    truncated_dicom = derive(test_files["rgb"])[:300]
    body = dicom_body([b"not dicom at all", good, no_uid, huge, truncated_dicom])
    answer = stow(orthanc, body)
    assert answer.status_code == 202, answer.text
    result = answer.json()
    # Only the parts whose SOP Class and SOP Instance UIDs were read have an item (none here).
    assert FAILED not in result
    assert [value(i, SOP_INSTANCE) for i in items(result, REFERENCED)] == [uid_of(good)]
    assert orthanc.get("/statistics").status_code == 200  # still alive after 48 MB of noise


def test_a_part_that_is_not_dicom_in_a_dicom_request(orthanc: Orthanc, test_files) -> None:
    good = derive(test_files["ct"])
    body = encode_multipart(
        [(good, "application/dicom", None), (b"\xff\xd8\xff", "image/jpeg", None)], BOUNDARY
    )
    answer = stow(orthanc, body)
    assert answer.status_code == 202
    assert FAILED not in answer.json()  # nothing to reference it by
    assert len(items(answer.json(), REFERENCED)) == 1


def test_full_storage_fails_with_a700_per_instance(orthanc_factory, test_files) -> None:
    small = orthanc_factory({"MaximumStorageSize": 1, "MaximumPatientCount": 0})
    study = generate_uid()
    # One patient: recycling cannot make room by deleting the patient being stored.
    pixels = {"Rows": 400, "Columns": 400, "PixelData": bytes(400 * 400 * 2)}
    instances = [derive(test_files["ct"], study, **pixels) for _ in range(12)]
    answer = stow(small, dicom_body(instances))
    assert answer.status_code == 202, answer.text
    result = answer.json()
    assert {value(item, FAILURE) for item in items(result, FAILED)} == {0xA700}
    stored = items(result, REFERENCED)
    assert stored
    assert len(small.get("/instances").json()) == len(stored)


def test_read_only_orthanc_refuses_stow(orthanc_factory, test_files) -> None:
    read_only = orthanc_factory({"ReadOnly": True})
    answer = stow(read_only, dicom_body([derive(test_files["ct"])]))
    assert answer.status_code == 403
    assert read_only.get("/instances").json() == []


# --- DICOM JSON / XML metadata with bulk data -------------------------------------------------


def metadata_and_bulk(data: bytes, base: str = "http://client/bulk/") -> tuple[dict, dict]:
    """A Part 10 file as DICOM JSON whose binary values are BulkDataURIs, and those values."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    bulk: dict[str, bytes] = {}

    def to_uri(element: pydicom.DataElement) -> str:
        uri = f"{base}{element.tag:08X}"
        bulk[uri] = element.value
        return uri

    metadata = dataset.to_json_dict(bulk_data_threshold=256, bulk_data_element_handler=to_uri)
    return metadata, bulk


def metadata_body(metadata_parts: list[tuple[bytes, str]], bulk: dict[str, tuple[bytes, str]]):
    parts = [(payload, media, None) for payload, media in metadata_parts]
    parts += [(payload, media, {"Content-Location": uri}) for uri, (payload, media) in bulk.items()]
    return encode_multipart(parts, BOUNDARY)


def stored_file(orthanc: Orthanc, sop_instance: str) -> pydicom.Dataset:
    (found,) = orthanc.post(
        "/tools/find", json={"Level": "Instance", "Query": {"SOPInstanceUID": sop_instance}}
    ).json()
    return pydicom.dcmread(io.BytesIO(orthanc.get(f"/instances/{found}/file").content))


JSON_TYPE = f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}'
XML_TYPE = f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}'


def test_json_metadata_with_bulk_data_is_assembled(orthanc: Orthanc, test_files) -> None:
    original = derive(test_files["ct"])
    metadata, bulk = metadata_and_bulk(original)
    octets = {uri: (payload, "application/octet-stream") for uri, payload in bulk.items()}
    body = metadata_body([(json.dumps([metadata]).encode(), "application/dicom+json")], octets)
    answer = stow(orthanc, body, content_type=JSON_TYPE)
    assert answer.status_code == 200, answer.text
    stored = stored_file(orthanc, uid_of(original))
    expected = pydicom.dcmread(io.BytesIO(original))
    assert stored.PixelData == expected.PixelData
    assert stored.PatientName == expected.PatientName
    assert stored.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


def test_compressed_frame_bulk_data_keeps_its_transfer_syntax(orthanc: Orthanc, test_files) -> None:
    original = pydicom.dcmread(test_files["jpeg_baseline_rgb"])
    frame = next(generate_frames(original.PixelData, number_of_frames=1))
    del original.PixelData
    original.SOPInstanceUID = generate_uid()
    metadata = original.to_json_dict()
    metadata["7FE00010"] = {"vr": "OB", "BulkDataURI": "cid:frame1"}
    body = encode_multipart(
        [
            (json.dumps(metadata).encode(), "application/dicom+json", None),
            (frame, "image/jpeg", {"Content-ID": "<frame1>"}),
        ],
        BOUNDARY,
    )
    answer = stow(orthanc, body, content_type=JSON_TYPE)
    assert answer.status_code == 200, answer.text
    stored = stored_file(orthanc, original.SOPInstanceUID)
    assert stored.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert next(generate_frames(stored.PixelData, number_of_frames=1)) == frame


def test_xml_metadata_with_bulk_data_and_xml_answer(orthanc: Orthanc, test_files) -> None:
    original = derive(test_files["mr"])
    metadata, bulk = metadata_and_bulk(original)
    octets = {uri: (payload, "application/octet-stream") for uri, payload in bulk.items()}
    body = metadata_body([(to_native_xml(metadata), "application/dicom+xml")], octets)
    answer = stow(orthanc, body, content_type=XML_TYPE, headers={"Accept": "application/dicom+xml"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/dicom+xml"
    assert uid_of(original).encode() in answer.content
    assert (
        stored_file(orthanc, uid_of(original)).PixelData
        == pydicom.dcmread(io.BytesIO(original)).PixelData
    )


def test_bad_metadata_parts_fail_alone(orthanc: Orthanc, test_files) -> None:
    good, no_part = derive(test_files["ct"]), derive(test_files["mr"])
    good_metadata, good_bulk = metadata_and_bulk(good, "http://client/good/")
    orphan_metadata, _ = metadata_and_bulk(no_part, "http://client/missing/")
    no_uid, _ = metadata_and_bulk(derive(test_files["rgb"]))
    del no_uid["00080018"]
    metadata_parts = [
        (b"{not json", "application/dicom+json"),
        (json.dumps({"00100010": {"vr": "XX", "Value": 3}}).encode(), "application/dicom+json"),
        (json.dumps([good_metadata, orphan_metadata, no_uid]).encode(), "application/dicom+json"),
        (
            b"<NativeDicomModel><DicomAttribute tag='zz'/></NativeDicomModel>",
            "application/dicom+xml",
        ),
    ]
    octets = {uri: (payload, "application/octet-stream") for uri, payload in good_bulk.items()}
    answer = stow(orthanc, metadata_body(metadata_parts, octets), content_type=JSON_TYPE)
    assert answer.status_code == 202, answer.text
    result = answer.json()
    (failure,) = items(result, FAILED)  # listed only when its SOP UIDs could be read
    assert value(failure, FAILURE) == 0xC000
    assert value(failure, SOP_INSTANCE) == uid_of(no_part)
    assert [value(i, SOP_INSTANCE) for i in items(result, REFERENCED)] == [uid_of(good)]
    assert not is_stored(orthanc, uid_of(no_part))


# --- Real clients and the official plugin -----------------------------------------------------


def test_dicomweb_client_store_instances(orthanc: Orthanc, test_files) -> None:
    study = generate_uid()
    datasets = [pydicom.dcmread(io.BytesIO(derive(test_files[r], study))) for r in ("ct", "mr")]
    client = DICOMwebClient(url=orthanc.url + "/dicom-web")
    result = client.store_instances(datasets, study_instance_uid=study)
    uids = [item.ReferencedSOPInstanceUID for item in result.ReferencedSOPSequence]
    assert uids == [dataset.SOPInstanceUID for dataset in datasets]
    assert "FailedSOPSequence" not in result
    assert result.RetrieveURL.endswith(study)


@pytest.mark.official
def test_official_plugin_pushes_a_study_into_this_one(
    orthanc: Orthanc, orthanc_factory, test_files
):
    peer = orthanc_factory({"DicomWeb": {"Servers": {"py": [orthanc.url + "/dicom-web/"]}}}, True)
    study = generate_uid()
    instances = [derive(test_files[role], study) for role in ("ct", "mr", "rgb", "jpeg2000")]
    answers = [peer.post("/instances", data=data).json() for data in instances]
    answer = peer.post(
        "/dicom-web/servers/py/stow", json={"Resources": [answers[0]["ParentStudy"]]}
    )
    assert answer.status_code == 200, answer.text
    assert all(is_stored(orthanc, uid_of(data)) for data in instances)


# --- Memory ------------------------------------------------------------------------------------


def test_a_big_request_costs_the_two_copies_of_its_body_and_little_more(
    orthanc_factory, test_files
) -> None:
    """Python's copy of the body shrinks as its parts are stored, while the core's cache grows."""
    private = orthanc_factory()
    study, series = generate_uid(), generate_uid()
    pixels = {"Rows": 2048, "Columns": 2048, "PixelData": bytes(2048 * 2048 * 2)}
    instances = [derive(test_files["ct"], study, series=series, **pixels) for _ in range(24)]
    body = dicom_body(instances)
    body_mb = len(body) / 2**20
    assert private.process is not None
    with MemorySampler(private.process.pid) as sampler:
        answer = stow(private, body)
    assert answer.status_code == 200, answer.text
    assert len(items(answer.json(), REFERENCED)) == len(instances)
    # The core's copy and Python's (plugin 4.0 has no streamed body), plus the core's own
    # working memory; without releasing the stored parts, the core's storage cache (128 MB by
    # default) came on top.
    assert sampler.growth_mb < 2 * body_mb + 64, f"{sampler.growth_mb:.0f} MB for {body_mb:.0f}"


# --- Parallel stores through the core's own HTTP server ---------------------------------------


def http_stores(orthanc: Orthanc) -> int:
    """The POST /instances that reached the core through its HTTP server (verbose log)."""
    return orthanc.log_text().count("(http) POST /instances")


def test_stores_go_through_the_http_loopback(orthanc_factory, test_files) -> None:
    server = orthanc_factory()
    instances = [derive(test_files["ct"]) for _ in range(6)]
    answer = stow(server, dicom_body(instances))
    assert answer.status_code == 200, answer.text
    sops = [value(item, SOP_INSTANCE) for item in items(answer.json(), REFERENCED)]
    assert sops == [uid_of(data) for data in instances]
    assert http_stores(server) == 6
    assert "one at a time" not in server.log_text()


def test_stow_with_authentication_enabled(tmp_path: Path, test_files) -> None:
    users = {"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "secret"}}
    server = Orthanc(tmp_path, users).start(wait=False)
    try:
        server.session.auth = ("alice", "secret")
        server.wait_until_ready()
        instances = [derive(test_files["ct"]), derive(test_files["mr"])]
        anonymous = requests.post(f"{server.url}/dicom-web/studies", dicom_body(instances))
        assert anonymous.status_code == 401
        answer = stow(server, dicom_body(instances))
        assert answer.status_code == 200, answer.text
        assert http_stores(server) == 2
        assert "one at a time" not in server.log_text()
    finally:
        server.stop()


def test_too_few_http_threads_store_through_the_sdk(orthanc_factory, test_files) -> None:
    server = orthanc_factory({"HttpThreadsCount": 2})
    instances = [derive(test_files["ct"]) for _ in range(4)]
    answer = stow(server, dicom_body(instances))
    assert answer.status_code == 200, answer.text
    assert http_stores(server) == 0
    assert "stores instances one at a time: HttpThreadsCount 2" in server.log_text()
