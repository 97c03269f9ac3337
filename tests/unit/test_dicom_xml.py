from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file

from orthanc_dicomweb.dicom.bulk_data_policy import BulkDataPolicy
from orthanc_dicomweb.dicom.json_model import from_orthanc_tags
from orthanc_dicomweb.dicom.tags import tag_path_text
from orthanc_dicomweb.dicom.xml_model import NAMESPACE, from_native_xml, to_native_xml
from orthanc_dicomweb.errors import HttpError
from tests.unit.test_dicom_json import CORE_TAGS, core_tags_of

NS = {"d": NAMESPACE}

RICH: dict[str, Any] = {
    "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
    "00080008": {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY", "AXIAL"]},
    "00081030": {"vr": "LO"},
    "00081140": {
        "vr": "SQ",
        "Value": [
            {
                "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
                "00081155": {"vr": "UI", "Value": ["1.2.3.4"]},
            },
            {},
        ],
    },
    "00100010": {
        "vr": "PN",
        "Value": [
            {"Alphabetic": "Иванов^Иван", "Ideographic": "王^小明", "Phonetic": "wang^xiaoming"},
            None,
            {"Alphabetic": "Doe^John^Q^Dr^Jr"},
            {"Ideographic": "山田^^太郎"},
        ],
    },
    "00111101": {"vr": "UN", "InlineBinary": "AQIDBA=="},
    "00180050": {"vr": "DS", "Value": [1.5]},
    "00200013": {"vr": "IS", "Value": [12]},
    "00200032": {"vr": "DS", "Value": [-158.135803, 0, 1e-7]},
    "00204000": {"vr": "LT", "Value": ["line 1\r\nline 2 with \\ and <&>"]},
    "00280009": {"vr": "AT", "Value": ["00181063", "00540080"]},
    "00280106": {"vr": "SS", "Value": [-5]},
    "00281050": {"vr": "DS", "Value": [40, None, 350]},
    "00189087": {"vr": "FD", "Value": [0.001, "NaN"]},
    "0072001C": {"vr": "UV", "Value": [3, "18446744073709551615"]},
    "7FE00010": {
        "vr": "OW",
        "BulkDataURI": "http://h/studies/1/series/2/instances/3/bulk/7FE00010",
    },
}


def parse(xml: bytes) -> ET.Element:
    return ET.fromstring(xml)


def test_document_is_well_formed_and_in_the_namespace() -> None:
    xml = to_native_xml(RICH)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = parse(xml)
    assert root.tag == f"{{{NAMESPACE}}}NativeDicomModel"
    attributes = root.findall("d:DicomAttribute", NS)
    assert [a.get("tag") for a in attributes] == sorted(RICH)
    name = root.find("d:DicomAttribute[@tag='00100010']", NS)
    assert name is not None
    assert name.get("vr") == "PN"
    assert name.get("keyword") == "PatientName"


def test_person_name_components() -> None:
    root = parse(to_native_xml(RICH))
    names = root.findall("d:DicomAttribute[@tag='00100010']/d:PersonName", NS)
    assert [n.get("number") for n in names] == ["1", "3", "4"]  # the empty second is left out
    first = names[0]
    assert first.findtext("d:Alphabetic/d:FamilyName", namespaces=NS) == "Иванов"
    assert first.findtext("d:Alphabetic/d:GivenName", namespaces=NS) == "Иван"
    assert first.findtext("d:Ideographic/d:FamilyName", namespaces=NS) == "王"
    assert first.findtext("d:Phonetic/d:GivenName", namespaces=NS) == "xiaoming"
    full = names[1].find("d:Alphabetic", NS)
    assert full is not None
    assert [c.tag.split("}")[1] for c in full] == [
        "FamilyName",
        "GivenName",
        "MiddleName",
        "NamePrefix",
        "NameSuffix",
    ]


def test_values_items_and_binary() -> None:
    root = parse(to_native_xml(RICH))
    values = root.findall("d:DicomAttribute[@tag='00281050']/d:Value", NS)
    assert [(v.get("number"), v.text) for v in values] == [("1", "40"), ("3", "350")]
    items = root.findall("d:DicomAttribute[@tag='00081140']/d:Item", NS)
    assert [i.get("number") for i in items] == ["1", "2"]
    nested = items[0].find("d:DicomAttribute[@tag='00081155']/d:Value", NS)
    assert nested is not None and nested.text == "1.2.3.4"
    bulk = root.find("d:DicomAttribute[@tag='7FE00010']/d:BulkData", NS)
    assert bulk is not None and bulk.get("uri", "").endswith("/bulk/7FE00010")
    inline = root.findtext("d:DicomAttribute[@tag='00111101']/d:InlineBinary", namespaces=NS)
    assert inline == "AQIDBA=="
    empty = root.find("d:DicomAttribute[@tag='00081030']", NS)
    assert empty is not None and len(empty) == 0


def test_round_trip_rich_dataset() -> None:
    assert from_native_xml(to_native_xml(RICH)) == RICH


def test_round_trip_the_core_tags_and_a_real_plan() -> None:
    policy = BulkDataPolicy(uri_for=lambda path: "bulk/" + tag_path_text(path))
    core = from_orthanc_tags(CORE_TAGS, policy)
    assert from_native_xml(to_native_xml(core)) == core
    plan = from_orthanc_tags(core_tags_of(pydicom.dcmread(get_testdata_file("rtplan.dcm"))))
    assert from_native_xml(to_native_xml(plan)) == plan


def test_illegal_xml_characters_are_dropped() -> None:
    xml = to_native_xml({"00204000": {"vr": "LT", "Value": ["a\x00b\x1bc"]}})
    assert from_native_xml(xml) == {"00204000": {"vr": "LT", "Value": ["abc"]}}


def test_reads_documents_without_namespace_or_numbers() -> None:
    xml = b"""<NativeDicomModel>
      <DicomAttribute tag="00100020" vr="LO"><Value>ID1</Value><Value>ID2</Value></DicomAttribute>
      <DicomAttribute tag="00100010"><PersonName><Alphabetic><FamilyName>Doe</FamilyName>
        <GivenName>J</GivenName></Alphabetic></PersonName></DicomAttribute>
      <DicomAttribute tag="00280010" vr="US"><Value number="1">512</Value></DicomAttribute>
    </NativeDicomModel>"""
    assert from_native_xml(xml) == {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^J"}]},
        "00100020": {"vr": "LO", "Value": ["ID1", "ID2"]},
        "00280010": {"vr": "US", "Value": [512]},
    }


@pytest.mark.parametrize(
    "xml",
    [
        b"<NativeDicomModel><DicomAttribute",
        b"<Other/>",
        b'<NativeDicomModel><DicomAttribute tag="xyz" vr="LO"/></NativeDicomModel>',
        b'<NativeDicomModel><DicomAttribute tag="00100020" vr="LO">'
        b'<Value number="0">x</Value></DicomAttribute></NativeDicomModel>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><NativeDicomModel/>',
    ],
)
def test_bad_documents_are_bad_requests(xml: bytes) -> None:
    with pytest.raises(HttpError) as caught:
        from_native_xml(xml)
    assert caught.value.status == 400


def test_round_trip_array_of_values() -> None:
    dataset = {
        "00660040": {"vr": "OL", "Value": [1, 70000]},
        "00640009": {"vr": "OF", "Value": [0.5, -2.0]},
        "00431028": {"vr": "OB", "Value": [7, 255]},
    }
    assert from_native_xml(to_native_xml(dataset)) == dataset
