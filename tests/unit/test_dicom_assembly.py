"""Reading an instance's identity from its header, and assembling instances from metadata."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import MappingProxyType

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from orthanc_dicomweb.dicom.assembly import (
    InstanceIdentity,
    NonConformantInstance,
    UnreadableInstance,
    assemble,
    bulk_data_parts,
    read_identity,
    read_json_metadata,
    read_xml_metadata,
)
from orthanc_dicomweb.http.multipart import Part
from tests.harness import PYDICOM_FILES

CT = PYDICOM_FILES / "CT_small.dcm"


def part10(dataset: pydicom.Dataset, enforce: bool = True) -> memoryview:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=enforce)
    return memoryview(buffer.getvalue())


def part(body: bytes, **headers: str) -> Part:
    names = {name.replace("_", "-").lower(): value for name, value in headers.items()}
    return Part(MappingProxyType(names), memoryview(body))


def test_identity_is_read_from_the_header() -> None:
    dataset = pydicom.dcmread(CT)
    identity = read_identity(memoryview(CT.read_bytes()))
    assert identity == InstanceIdentity(
        dataset.SOPClassUID,
        dataset.SOPInstanceUID,
        dataset.StudyInstanceUID,
        dataset.SeriesInstanceUID,
        dataset.PatientID,
    )


@pytest.mark.parametrize(
    "path",
    [
        PYDICOM_FILES / "MR_small_implicit.dcm",
        PYDICOM_FILES / "MR_small_bigendian.dcm",
        PYDICOM_FILES / "image_dfl.dcm",  # deflated
        PYDICOM_FILES / "rtplan.dcm",  # sequences before the UIDs
        PYDICOM_FILES / "reportsi.dcm",
        PYDICOM_FILES.parent / "charset_files" / "chrFrenMulti.dcm",
    ],
    ids=lambda path: path.name,
)
def test_identity_is_read_in_every_transfer_syntax(path: Path) -> None:
    dataset = pydicom.dcmread(path)
    identity = read_identity(memoryview(path.read_bytes()))
    expected = (dataset.SOPInstanceUID, dataset.StudyInstanceUID, dataset.SeriesInstanceUID)
    assert (identity.sop_instance, identity.study, identity.series) == expected
    assert identity.patient_id == dataset.get("PatientID", "")


def test_identity_of_implicit_vr_data_declared_explicit() -> None:
    dataset = pydicom.dcmread(CT)
    meta, body = DicomBytesIO(), DicomBytesIO()
    write_file_meta_info(meta, dataset.file_meta)  # explicit VR little endian
    body.is_little_endian, body.is_implicit_VR = True, True
    write_dataset(body, dataset)
    data = b"\0" * 128 + b"DICM" + meta.getvalue() + body.getvalue()
    assert read_identity(memoryview(data)).sop_instance == dataset.SOPInstanceUID


def test_orthanc_id_has_the_core_format_and_depends_on_every_identifier() -> None:
    identity = InstanceIdentity("1.2", "1.2.3.4", "1.2.3", "1.2.3.4.5", "patient")
    other = InstanceIdentity("1.2", "1.2.3.4", "1.2.3", "1.2.3.4.5", "patient ")
    assert re.fullmatch(r"([0-9a-f]{8}-){4}[0-9a-f]{8}", identity.orthanc_id())
    assert identity.orthanc_id() != other.orthanc_id()


@pytest.mark.parametrize("data", [b"", b"hello", b"\0" * 128 + b"DICN" + b"\0" * 64])
def test_data_without_dicm_prefix_is_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableInstance, match="DICM"):
        read_identity(memoryview(data))


def test_truncated_header_is_unreadable() -> None:
    with pytest.raises(UnreadableInstance):
        read_identity(memoryview(CT.read_bytes())[:400])


def test_missing_sop_instance_uid_is_non_conformant_with_the_class_named() -> None:
    dataset = pydicom.dcmread(CT)
    del dataset.SOPInstanceUID
    del dataset.file_meta.MediaStorageSOPInstanceUID
    with pytest.raises(NonConformantInstance, match="SOPInstanceUID") as caught:
        read_identity(part10(dataset, enforce=False))
    assert caught.value.sop_class == dataset.SOPClassUID
    assert caught.value.sop_instance is None


def test_file_meta_contradicting_the_dataset_is_read_from_the_dataset() -> None:
    dataset = pydicom.dcmread(CT)
    dataset.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    assert read_identity(part10(dataset, enforce=False)).sop_instance == dataset.SOPInstanceUID


def test_bulk_data_parts_are_found_by_location_and_content_id() -> None:
    located = part(b"a", content_location=" http://x/1 ")
    identified = part(b"b", content_id="<frame@x>")
    anonymous = part(b"c")
    found = bulk_data_parts([located, identified, anonymous])
    assert found == {"http://x/1": located, "cid:frame@x": identified}


def test_json_metadata_is_one_dataset_or_an_array() -> None:
    assert read_json_metadata(memoryview(b'{"00100010": {"vr": "PN"}}')) == [
        {"00100010": {"vr": "PN"}}
    ]
    assert len(read_json_metadata(memoryview(b"[{}, {}]"))) == 2


@pytest.mark.parametrize("text", [b"{bad", b"[]", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_json_that_is_no_dicom_json_is_unreadable(text: bytes) -> None:
    with pytest.raises(UnreadableInstance):
        read_json_metadata(memoryview(text))


@pytest.mark.parametrize("text", [b"<a", b"<Other/>", b"<!DOCTYPE x><NativeDicomModel/>"])
def test_xml_that_is_no_native_dicom_model_is_unreadable(text: bytes) -> None:
    with pytest.raises(UnreadableInstance):
        read_xml_metadata(memoryview(text))


def ct_metadata() -> tuple[dict, dict[str, Part], pydicom.Dataset]:
    """CT_small as DICOM JSON, its binary values as octet-stream parts named by URIs."""
    dataset = pydicom.dcmread(CT)
    bulk: dict[str, Part] = {}

    def to_uri(element: pydicom.DataElement) -> str:
        uri = f"http://x/{element.tag:08X}"
        bulk[uri] = part(element.value, content_type="application/octet-stream")
        return uri

    metadata = dataset.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=to_uri)
    return metadata, bulk, dataset


def test_assembled_instance_is_a_part10_file_with_the_bulk_data() -> None:
    metadata, bulk, original = ct_metadata()
    identity, data = assemble(metadata, bulk)
    assert identity.sop_instance == original.SOPInstanceUID
    assembled = pydicom.dcmread(io.BytesIO(data))
    assert assembled.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert assembled.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert assembled.PixelData == original.PixelData
    assert assembled.PatientName == original.PatientName


def test_transfer_syntax_in_the_metadata_goes_to_the_file_meta() -> None:
    metadata, bulk, _ = ct_metadata()
    metadata["00020010"] = {"vr": "UI", "Value": [ImplicitVRLittleEndian]}
    _, data = assemble(metadata, bulk)
    assembled = pydicom.dcmread(io.BytesIO(data))
    assert assembled.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert 0x00020010 not in assembled


def test_compressed_frame_is_encapsulated_with_its_transfer_syntax() -> None:
    metadata, bulk, _ = ct_metadata()
    bulk["http://x/7FE00010"] = part(b"\xff\xd8jpeg\xff\xd9", content_type="image/jpeg")
    _, data = assemble(metadata, bulk)
    assembled = pydicom.dcmread(io.BytesIO(data))
    assert assembled.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert b"\xff\xd8jpeg\xff\xd9" in assembled.PixelData


def test_missing_bulk_data_part_is_unreadable_naming_the_instance() -> None:
    metadata, bulk, original = ct_metadata()
    del bulk["http://x/7FE00010"]
    with pytest.raises(UnreadableInstance, match="references no part") as caught:
        assemble(metadata, bulk)
    assert caught.value.sop_instance == original.SOPInstanceUID


def test_unknown_compressed_media_type_is_unreadable() -> None:
    metadata, bulk, _ = ct_metadata()
    bulk["http://x/7FE00010"] = part(b"xx", content_type="image/bmp")
    with pytest.raises(UnreadableInstance, match="unknown media type"):
        assemble(metadata, bulk)


@pytest.mark.parametrize(
    "attribute",
    [{"vr": "XX", "Value": [3]}, {"vr": "US", "Value": ["x"]}, {"vr": "PN", "Value": 3}],
)
def test_invalid_dicom_json_is_unreadable(attribute: dict) -> None:
    metadata, bulk, _ = ct_metadata()
    metadata["00280010"] = attribute
    with pytest.raises(UnreadableInstance):
        assemble(metadata, bulk)


def test_metadata_without_uids_is_non_conformant() -> None:
    with pytest.raises(NonConformantInstance, match="SOPClassUID"):
        assemble({"00100010": {"vr": "PN", "Value": [{"Alphabetic": "A"}]}}, {})
