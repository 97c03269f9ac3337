from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file

from orthanc_dicomweb.dicom.bulk_data_policy import OTHER_BINARY_MODES, BulkDataPolicy
from orthanc_dicomweb.dicom.json_model import (
    encode_datasets,
    from_main_dicom_tags,
    from_orthanc_tags,
)
from orthanc_dicomweb.dicom.tags import TagPath, parse_tag, tag_key, tag_path_text, vr_of
from orthanc_dicomweb.dicom.values import (
    convert_value,
    element,
    element_from_text,
    values_from_text,
)
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.orthanc.tags import orthanc_content_path

# --- The core's full tag format: these shapes were copied from Orthanc 1.10.1 /tags answers ---


def text(name: str, value: str, creator: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"Name": name, "Type": "String", "Value": value}
    if creator:
        entry["PrivateCreator"] = creator
    return entry


def null(name: str, creator: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"Name": name, "Type": "Null", "Value": None}
    if creator:
        entry["PrivateCreator"] = creator
    return entry


def sequence(name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Name": name, "Type": "Sequence", "Value": items}


CORE_TAGS: dict[str, Any] = {
    "0008,0005": text("SpecificCharacterSet", "ISO_IR 192"),
    "0008,0008": text("ImageType", "ORIGINAL\\PRIMARY\\AXIAL"),
    "0008,1030": text("StudyDescription", ""),
    "0008,1140": sequence("ReferencedImageSequence", [{}]),
    "0008,1160": text("ReferencedFrameNumber", "1\\12"),
    "0009,0010": text("PrivateCreator", "GEMS_IDEN_01"),
    "0009,1002": text("SuiteId", "CT01", "GEMS_IDEN_01"),
    "0010,0010": text("PatientName", "Иванов^Иван=王^小明=wang^xiaoming"),
    "0010,1002": sequence(
        "OtherPatientIDsSequence",
        [
            {
                "0010,0020": text("PatientID", "ABCD1234"),
                "0010,0022": text("TypeOfPatientID", "TEXT"),
            },
            {
                "0010,0020": text("PatientID", "1234ABCD"),
                "0010,0022": text("TypeOfPatientID", "TEXT"),
            },
        ],
    ),
    "0011,0010": text("PrivateCreator", "GEMS_PATI_01"),
    "0011,0011": text("PrivateCreator", "MYVENDOR"),
    "0011,1010": text("PatientStatus", "0", "GEMS_PATI_01"),
    "0011,1101": text("Unknown Tag & Data", "private string", "MYVENDOR"),
    "0011,1102": null("Unknown Tag & Data", "MYVENDOR"),
    "0011,1103": text("Unknown Tag & Data", "1\\2\\3", "MYVENDOR"),
    # The core leaves PrivateCreator out of this private sequence: found from 0011,0011.
    "0011,1104": sequence(
        "Unknown Tag & Data",
        [
            {
                "0011,0010": text("PrivateCreator", "MYVENDOR"),
                "0011,1001": text("Unknown Tag & Data", "inner", "MYVENDOR"),
            }
        ],
    ),
    "0018,0050": text("SliceThickness", "1.50000"),
    "0018,6024": null("PhysicalUnitsXDirection"),  # an empty US value: also "Null"
    "0020,0013": text("InstanceNumber", "12"),
    "0020,4000": {"Name": "ImageComments", "Type": "TooLong", "Value": None},
    "0028,0009": text("FrameIncrementPointer", "0018,1063"),
    "0028,0100": text("BitsAllocated", "16"),
    "0028,0103": text("PixelRepresentation", "1"),
    "0028,0106": text("SmallestImagePixelValue", "5"),
    "0040,0275": sequence("RequestAttributesSequence", []),
    "0040,a30a": text("NumericValue", "1.50000\\2\\-3.25e2"),
    "0043,1028": null("UniqueImageIdentifier", "GEMS_PARM_01"),
    "0054,0016": sequence(
        "RadiopharmaceuticalInformationSequence",
        [
            {
                "0018,1072": text("RadiopharmaceuticalStartTime", "120000"),
                "0018,1075": text("RadionuclideHalfLife", "6586.2"),
            }
        ],
    ),
    "0066,0040": null("LongPrimitivePointIndexList"),
    "7fe0,0010": null("PixelData"),
}


def uri_for(path: TagPath) -> str:
    return "http://x/bulk/" + tag_path_text(path)


BY_URI = BulkDataPolicy("BulkDataURI", uri_for=uri_for)


# --- Tags and VRs ----------------------------------------------------------------------------


def test_tag_key_is_eight_upper_case_hex_digits() -> None:
    assert tag_key(0x0010000F) == "0010000F"
    assert tag_key(0x7FE00010) == "7FE00010"


@pytest.mark.parametrize(
    "text", ["00100010", "0010,0010", "(0010,0010)", " ( 0010 , 0010 ) ", "PatientName"]
)
def test_parse_tag_forms(text: str) -> None:
    assert parse_tag(text) == 0x00100010


def test_parse_tag_lower_case_hex() -> None:
    assert parse_tag("7fe0,0010") == 0x7FE00010


@pytest.mark.parametrize("text", ["NoSuchKeyword", "0010,001", "12345", "", "0010-0010x"])
def test_parse_tag_unknown(text: str) -> None:
    with pytest.raises(HttpError) as caught:
        parse_tag(text)
    assert caught.value.status == 400
    assert "unknown attribute" in caught.value.message


def test_vr_of_dictionary_private_and_group_length() -> None:
    assert vr_of(0x00100010) == "PN"
    assert vr_of(0x00080000) == "UL"
    assert vr_of(0x00110010) == "LO"  # private creator
    assert vr_of(0x00111001) == "UN"  # private, creator unknown
    assert vr_of(0x00191002, private_creator="GEMS_ACQU_01") == "SL"
    assert vr_of(0x00191002, private_creator="NOBODY") == "UN"
    assert vr_of(0x60003000) in ("OW", "OB")  # repeating group (overlay data)


def test_vr_of_ambiguous() -> None:
    assert vr_of(0x00280106) == "US"
    assert vr_of(0x00280106, {"PixelRepresentation": "1"}) == "SS"
    assert vr_of(0x00280106, {"PixelRepresentation": 0}) == "US"
    assert vr_of(0x7FE00010) == "OW"
    assert vr_of(0x7FE00010, {"BitsAllocated": "8"}, binary=True) == "OB"
    compressed = {"BitsAllocated": "16", "TransferSyntaxUID": "1.2.840.10008.1.2.4.50"}
    assert vr_of(0x7FE00010, compressed, binary=True) == "OB"
    assert vr_of(0x00283006) == "US"  # LUTData "US or OW"
    assert vr_of(0x00283006, binary=True) == "OW"
    assert vr_of(0x00281200, {"PixelRepresentation": "1"}) == "SS"  # "US or SS or OW"


def test_tag_paths() -> None:
    path = (0x00540016, 0, 0x00181072)
    assert tag_path_text(path) == "00540016/1/00181072"  # as the official plugin's URIs
    assert tag_path_text((0x7FE00010,)) == "7fe00010"
    assert orthanc_content_path(path) == "0054-0016/0/0018-1072"


# --- Values ------------------------------------------------------------------------------------


def test_person_names_with_ideographic_and_phonetic_groups() -> None:
    assert element_from_text("PN", "Иванов^Иван=王^小明=wang^xiaoming") == {
        "vr": "PN",
        "Value": [
            {"Alphabetic": "Иванов^Иван", "Ideographic": "王^小明", "Phonetic": "wang^xiaoming"}
        ],
    }
    # Every group the value holds is kept, empty ones too (as the official plugin answers).
    assert element_from_text("PN", "=山田^太郎") == {
        "vr": "PN",
        "Value": [{"Alphabetic": "", "Ideographic": "山田^太郎"}],
    }
    assert element_from_text("PN", "Wang^XiaoDong=王^小东= ") == {
        "vr": "PN",
        "Value": [{"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小东", "Phonetic": ""}],
    }
    assert element_from_text("PN", "==") == {"vr": "PN"}  # no text: an empty value
    assert convert_value("PN", {"Alphabetic": "A", "Phonetic": ""}) == {
        "Alphabetic": "A",
        "Phonetic": "",
    }
    assert element_from_text("PN", "Doe^John\\\\Roe") == {
        "vr": "PN",
        "Value": [{"Alphabetic": "Doe^John"}, None, {"Alphabetic": "Roe"}],
    }


def test_numbers_from_strings() -> None:
    assert element_from_text("DS", "1.50000") == {"vr": "DS", "Value": [1.5]}
    assert element_from_text("DS", "5.000000\\-3.25e2\\ 0.001 ") == {
        "vr": "DS",
        "Value": [5, -325, 0.001],
    }
    assert element_from_text("IS", "  12 ") == {"vr": "IS", "Value": [12]}
    assert element_from_text("IS", "1\\\\3") == {"vr": "IS", "Value": [1, None, 3]}
    assert element_from_text("US", "0\\256\\256\\0") == {"vr": "US", "Value": [0, 256, 256, 0]}
    assert element_from_text("SS", "-2000") == {"vr": "SS", "Value": [-2000]}
    assert element_from_text("FD", "1099.3100585938") == {"vr": "FD", "Value": [1099.3100585938]}
    assert element_from_text("FL", "nan\\inf") == {"vr": "FL", "Value": ["NaN", "Infinity"]}
    assert element_from_text("UV", "18446744073709551615") == {
        "vr": "UV",
        "Value": ["18446744073709551615"],  # beyond 2**53: a string keeps every digit
    }


def test_unparsable_numbers_are_kept_as_text() -> None:
    assert element_from_text("IS", "12a") == {"vr": "IS", "Value": ["12a"]}
    assert element_from_text("DS", "1e999") == {"vr": "DS", "Value": ["1e999"]}


def test_strings_are_split_and_trimmed_except_texts() -> None:
    assert element_from_text("CS", "ORIGINAL\\PRIMARY \\ AXIAL") == {
        "vr": "CS",
        "Value": ["ORIGINAL", "PRIMARY", "AXIAL"],
    }
    assert element_from_text("LT", "  a\\b  ") == {"vr": "LT", "Value": ["  a\\b"]}
    assert element_from_text("UI", "1.2.3\x00") == {"vr": "UI", "Value": ["1.2.3"]}


def test_empty_values_have_no_value_key() -> None:
    assert element_from_text("LO", "") == {"vr": "LO"}
    assert element_from_text("PN", None) == {"vr": "PN"}
    assert element("SQ", []) == {"vr": "SQ"}
    assert element("US", None) == {"vr": "US"}


def test_attribute_tags() -> None:
    assert element_from_text("AT", "0018,1063\\(0054,0080)") == {
        "vr": "AT",
        "Value": ["00181063", "00540080"],
    }
    assert element("AT", [0x7FE00010]) == {"vr": "AT", "Value": ["7FE00010"]}


def test_sequences_hold_datasets() -> None:
    item = {"00100020": {"vr": "LO", "Value": ["X"]}}
    assert element("SQ", [item, {}]) == {"vr": "SQ", "Value": [item, {}]}


# --- From the core's JSON ----------------------------------------------------------------------


def test_from_orthanc_tags_with_bulk_data_uris() -> None:
    result = from_orthanc_tags(CORE_TAGS, BY_URI)
    assert list(result) == sorted(result)
    assert result["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}  # the file's
    assert result["00080008"] == {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY", "AXIAL"]}
    assert result["00081030"] == {"vr": "LO"}
    assert result["00081140"] == {"vr": "SQ", "Value": [{}]}
    assert result["00081160"] == {"vr": "IS", "Value": [1, 12]}
    assert result["00090010"] == {"vr": "LO", "Value": ["GEMS_IDEN_01"]}
    assert result["00091002"]["Value"] == ["CT01"]
    assert result["00100010"]["Value"][0]["Ideographic"] == "王^小明"
    assert result["00101002"]["Value"][1] == {
        "00100020": {"vr": "LO", "Value": ["1234ABCD"]},
        "00100022": {"vr": "CS", "Value": ["TEXT"]},
    }
    # Unknown private tags can only be binary (UN): their bytes may be numbers (here US).
    assert result["00111101"] == {"vr": "UN", "BulkDataURI": "http://x/bulk/00111101"}
    assert result["00111103"] == {"vr": "UN", "BulkDataURI": "http://x/bulk/00111103"}
    nested = result["00111104"]["Value"][0]
    assert nested["00111001"] == {"vr": "UN", "BulkDataURI": "http://x/bulk/00111104/1/00111001"}
    assert result["00180050"] == {"vr": "DS", "Value": [1.5]}
    assert result["00186024"] == {"vr": "US"}
    assert result["00200013"] == {"vr": "IS", "Value": [12]}
    assert result["00204000"] == {"vr": "LT", "BulkDataURI": "http://x/bulk/00204000"}
    assert result["00280009"] == {"vr": "AT", "Value": ["00181063"]}
    assert result["00280106"] == {"vr": "SS", "Value": [5]}  # PixelRepresentation 1
    assert result["00400275"] == {"vr": "SQ"}
    assert result["0040A30A"] == {"vr": "DS", "Value": [1.5, 2, -325]}
    assert result["00431028"] == {"vr": "OB", "BulkDataURI": "http://x/bulk/00431028"}
    radiopharmaceutical = result["00540016"]["Value"][0]
    assert radiopharmaceutical["00181072"] == {"vr": "TM", "Value": ["120000"]}
    assert radiopharmaceutical["00181075"] == {"vr": "DS", "Value": [6586.2]}
    assert result["00660040"] == {"vr": "OL", "BulkDataURI": "http://x/bulk/00660040"}
    assert result["7FE00010"] == {"vr": "OW", "BulkDataURI": "http://x/bulk/7fe00010"}


def test_from_orthanc_tags_inline_binary_reads_through_the_callback() -> None:
    stored = {
        (0x00111102,): b"\x01\x02\x03\x04",
        (0x00431028,): b"\xff\x00",
        (0x00660040,): struct.pack("<2I", 1, 70000),
        (0x00111101,): b"private string",
        (0x00111103,): struct.pack("<3H", 1, 2, 3),
        (0x00111104, 0, 0x00111001): b"inner ",
        (0x00204000,): b"x" * 300,
        (0x00280009,): struct.pack("<4H", 0x0018, 0x1063, 0x0054, 0x0080),
    }
    asked: list[TagPath] = []

    def read_binary(path: TagPath) -> bytes:
        asked.append(path)
        return stored[path]

    policy = BulkDataPolicy("InlineBinary", uri_for=uri_for, read_binary=read_binary)
    result = from_orthanc_tags(CORE_TAGS, policy)
    assert result["00111102"] == {"vr": "UN", "InlineBinary": "AQIDBA=="}
    assert result["00431028"] == {
        "vr": "OB",
        "InlineBinary": base64.b64encode(b"\xff\x00").decode(),
    }
    assert result["00111103"] == {"vr": "UN", "InlineBinary": "AQACAAMA"}
    # Pixel data is never inlined; long texts are read and given as values.
    assert result["7FE00010"] == {"vr": "OW", "BulkDataURI": "http://x/bulk/7fe00010"}
    assert result["00204000"] == {"vr": "LT", "Value": ["x" * 300]}
    # The core's text has the first tag only: the raw value has them all.
    assert result["00280009"] == {"vr": "AT", "Value": ["00181063", "00540080"]}
    assert (0x7FE00010,) not in asked


def test_from_orthanc_tags_array_of_values() -> None:
    def read_binary(path: TagPath) -> bytes:
        if path == (0x00280009,):
            return struct.pack("<2H", 0x0018, 0x1063)
        return struct.pack("<2I", 1, 70000) if path == (0x00660040,) else b"\x07"

    policy = BulkDataPolicy("ArrayOfValues", uri_for=uri_for, read_binary=read_binary)
    result = from_orthanc_tags(CORE_TAGS, policy)
    assert result["00660040"] == {"vr": "OL", "Value": [1, 70000]}
    assert result["00431028"] == {"vr": "OB", "Value": [7]}
    assert result["00111102"] == {"vr": "UN", "BulkDataURI": "http://x/bulk/00111102"}


def test_from_orthanc_tags_without_policy_leaves_binary_out() -> None:
    result = from_orthanc_tags(CORE_TAGS)
    for key in ("7FE00010", "00431028", "00111101", "00204000", "00660040"):
        assert key not in result
    assert result["00180050"] == {"vr": "DS", "Value": [1.5]}


def test_binary_type_with_data_uri_is_inlined_without_callback() -> None:
    tags = {
        "0043,1028": {
            "Name": "UniqueImageIdentifier",
            "PrivateCreator": "GEMS_PARM_01",
            "Type": "Binary",
            "Value": "data:application/octet-stream;base64,AQID",
        },
        "0043,0010": text("PrivateCreator", "GEMS_PARM_01"),
    }
    result = from_orthanc_tags(tags, BulkDataPolicy("InlineBinary"))
    assert result["00431028"] == {"vr": "OB", "InlineBinary": "AQID"}


def short_format(tags: dict[str, Any]) -> dict[str, Any]:
    """The core's short format (`/tags?short`) of a dataset given in its full format."""
    return {
        key: [short_format(item) for item in entry["Value"]]
        if entry["Type"] == "Sequence"
        else entry["Value"]
        for key, entry in tags.items()
    }


@pytest.mark.parametrize("name", ["rtplan.dcm", "MR_small.dcm", "CT_small.dcm"])
def test_short_format_gives_the_same_datasets(name: str) -> None:
    # The short format has no PrivateCreator: it comes from the block's reservation, which
    # real datasets hold (the core reads the creator there too).
    reserved = {**CORE_TAGS, "0043,0010": text("PrivateCreator", "GEMS_PARM_01")}
    for tags in (reserved, core_tags_of(pydicom.dcmread(get_testdata_file(name)))):
        assert from_orthanc_tags(short_format(tags), BY_URI) == from_orthanc_tags(tags, BY_URI)


def test_short_format_nulls_are_told_apart_by_the_vr() -> None:
    tags = {
        "0009,0010": "GEMS_IDEN_01",
        "0009,1002": "CT01",  # private: its creator comes from the reservation above
        "0018,1310": None,  # empty or too long US: read
        "0020,4000": None,  # too long text: read
        "0040,0275": None,  # empty sequence
        "0043,1028": None,  # binary (UN: no reservation of its block): a BulkDataURI
        "7fe0,0010": None,
    }
    stored = {(0x00181310,): b"", (0x00204000,): b"comment " * 40, (0x00431028,): b"\x01"}
    policy = BulkDataPolicy("BulkDataURI", uri_for=uri_for, read_binary=stored.__getitem__)
    assert from_orthanc_tags(tags, policy) == {
        "00090010": {"vr": "LO", "Value": ["GEMS_IDEN_01"]},
        "00091002": {"vr": "SH", "Value": ["CT01"]},
        "00181310": {"vr": "US"},
        "00204000": {"vr": "LT", "Value": [("comment " * 40).rstrip()]},
        "00400275": {"vr": "SQ"},
        "00431028": {"vr": "UN", "BulkDataURI": "http://x/bulk/00431028"},
        "7FE00010": {"vr": "OW", "BulkDataURI": "http://x/bulk/7fe00010"},
    }


@pytest.mark.parametrize("mode", OTHER_BINARY_MODES)
def test_empty_binary_values_have_no_value_nor_uri(mode: str) -> None:
    """The core says "Null" for empty and non-empty binary values alike (Orthanc's suite,
    test_issue_195): the value is read, and an empty one is the VR alone."""
    tags = {"0008,4565": None, "0008,4567": None, "0011,1001": "", "7fe0,0010": None}
    stored = {(0x00084565,): b"", (0x00084567,): b"B\0", (0x00111001,): b""}
    policy = BulkDataPolicy(mode, uri_for=uri_for, read_binary=stored.__getitem__)
    result = from_orthanc_tags(tags, policy)
    assert result["00084565"] == {"vr": "UN"}
    assert result["00111001"] == {"vr": "UN"}  # unknown private: empty text from the core
    assert result["00084567"] != {"vr": "UN"}
    assert result["7FE00010"] == {"vr": "OW", "BulkDataURI": "http://x/bulk/7fe00010"}


@pytest.mark.parametrize(
    ("value", "terms"),
    [
        ("ISO_IR 100", ["ISO_IR 100"]),
        ("\\ISO 2022 IR 87", ["ISO 2022 IR 87"]),
        ("ISO 2022 IR 13\\ISO 2022 IR 87 ", ["ISO 2022 IR 13", "ISO 2022 IR 87"]),
        # The core decodes the value through JIS X 0201, where 0x5C is the yen sign.
        ("ISO 2022 IR 13\u00a5ISO 2022 IR 87", ["ISO 2022 IR 13", "ISO 2022 IR 87"]),
    ],
)
def test_specific_character_set_is_the_files(value: str, terms: list[str]) -> None:
    """As the official plugin (Orthanc's suite, test_encodings_wado_metadata): the file's
    defined terms, empty ones left out, although the JSON itself is Unicode."""
    result = from_orthanc_tags({"0008,0005": text("SpecificCharacterSet", value)})
    assert result["00080005"] == {"vr": "CS", "Value": terms}


def test_too_long_numbers_are_read_as_numbers_and_too_long_unknown_values_as_binary() -> None:
    matrix = struct.pack("<4H", 0, 256, 256, 0)
    too_long = {"Name": "", "Type": "TooLong", "Value": None}
    tags = {
        "0011,0010": text("PrivateCreator", "MYVENDOR"),
        "0011,1101": {**too_long, "PrivateCreator": "MYVENDOR"},
        "0018,1310": too_long,
    }
    policy = BulkDataPolicy("BulkDataURI", uri_for=uri_for, read_binary=lambda path: matrix)
    for dataset in (tags, short_format(tags)):
        result = from_orthanc_tags(dataset, policy)
        assert result["00181310"] == {"vr": "US", "Value": [0, 256, 256, 0]}
        assert result["00111101"] == {"vr": "UN", "BulkDataURI": "http://x/bulk/00111101"}
    assert from_orthanc_tags(tags)["00181310"] == {"vr": "US"}  # no way to read it


def test_values_from_text() -> None:
    assert values_from_text("CS", " A ") == ["A"]
    assert values_from_text("LO", "\\") is None
    assert values_from_text("LO", "\\b") == [None, "b"]
    assert values_from_text("PN", "A^B\\C") == [{"Alphabetic": "A^B"}, {"Alphabetic": "C"}]
    assert values_from_text("ST", " a\\b ") == [" a\\b"]
    assert values_from_text("IS", " ") is None


def test_from_main_dicom_tags() -> None:
    result = from_main_dicom_tags(
        {
            "StudyInstanceUID": "1.2.3",
            "StudyDate": "20030805",
            "PatientName": "Lastname^Firstname",
            "AccessionNumber": "",
            "ImagePositionPatient": "-158.135803\\-179.035797\\-75.699997",
            "0020,0013": "7",
            "NotADicomKeyword": "ignored",
        }
    )
    assert list(result) == ["00080020", "00080050", "00100010", "0020000D", "00200013", "00200032"]
    assert result["00080050"] == {"vr": "SH"}
    assert result["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Lastname^Firstname"}]}
    assert result["00200032"]["Value"] == [-158.135803, -179.035797, -75.699997]
    assert result["00200013"] == {"vr": "IS", "Value": [7]}


def test_encode_datasets_is_compact_utf8() -> None:
    data = encode_datasets([{"00100010": {"vr": "PN", "Value": [{"Ideographic": "王"}]}}])
    assert data == '[{"00100010":{"vr":"PN","Value":[{"Ideographic":"王"}]}}]'.encode()
    assert json.loads(data) == [{"00100010": {"vr": "PN", "Value": [{"Ideographic": "王"}]}}]


# --- Against pydicom's own encoder ------------------------------------------------------------


def core_tags_of(dataset: pydicom.Dataset) -> dict[str, Any]:
    """What the core's /tags answers for a dataset (rules observed on Orthanc 1.10.1)."""
    result: dict[str, Any] = {}
    for elem in dataset:
        key = f"{elem.tag.group:04x},{elem.tag.element:04x}"
        if elem.VR == "SQ":
            result[key] = sequence(elem.keyword, [core_tags_of(item) for item in elem.value])
        elif elem.VR in BINARY_ENCODED or (elem.is_empty and elem.VR in NUMBERS):
            result[key] = null(elem.keyword)
        else:
            values = elem.value if elem.VM > 1 else [elem.value]
            if elem.VR == "AT":
                values = [f"{v >> 16:04x},{v & 0xFFFF:04x}" for v in values]
            joined = "\\".join("" if v is None else str(v) for v in values)
            if len(joined) > 256:
                result[key] = {"Name": elem.keyword, "Type": "TooLong", "Value": None}
            else:
                result[key] = text(elem.keyword, joined)
    return result


BINARY_ENCODED = ("OB", "OW", "OF", "OD", "OL", "OV", "UN", "OB or OW")
NUMBERS = ("US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "US or SS")


def comparable(dataset: dict[str, Any]) -> dict[str, Any]:
    """Numbers compared by value (we send integral DS as ints: 5 vs pydicom's 5.0)."""
    return json.loads(json.dumps(dataset), parse_float=lambda t: float(t))


@pytest.mark.parametrize("name", ["rtplan.dcm", "MR_small.dcm", "CT_small.dcm"])
def test_same_as_pydicom(name: str) -> None:
    dataset = pydicom.dcmread(get_testdata_file(name))
    ours = from_orthanc_tags(core_tags_of(dataset), BY_URI)
    theirs = dataset.to_json_dict(bulk_data_element_handler=lambda e: "x", bulk_data_threshold=0)
    # Deliberate differences: SpecificCharacterSet is always UTF-8 in our answers; the VR of
    # "US or SS" comes from PixelRepresentation, pydicom keeps the file's explicit VR;
    # binary values are BulkDataURIs here (their bytes are not in the core's JSON).
    for dataset_json in (ours, theirs):
        dataset_json.pop("00080005", None)
        for key, attribute in list(dataset_json.items()):
            if "BulkDataURI" in attribute or "InlineBinary" in attribute:
                dataset_json[key] = {"vr": attribute["vr"], "binary": True}
    assert ours.keys() == theirs.keys()
    for key in ours:
        mine, pydicoms = comparable(ours[key]), comparable(theirs[key])
        if pydicoms.get("vr") in ("US", "SS") and mine.get("vr") in ("US", "SS"):
            mine["vr"] = pydicoms["vr"]
        if pydicoms.get("vr") == "SQ" and not pydicoms.get("Value"):
            pydicoms.pop("Value", None)  # pydicom writes "Value": [] for an empty sequence
        assert mine == pydicoms, key
