"""The `Dictionary` configuration option: parsed, checked, and taught to pydicom."""

from __future__ import annotations

import uuid

import pytest

from orthanc_dicomweb.config import ConfigurationError
from orthanc_dicomweb.dicom.dictionary import DictionaryEntry, parse_dictionary, register
from orthanc_dicomweb.dicom.json_model import from_orthanc_tags
from orthanc_dicomweb.dicom.tags import parse_tag, vr_of
from orthanc_dicomweb.dicom.values import element_from_text


def test_entries_are_parsed_with_their_multiplicity_and_creator() -> None:
    entries = parse_dictionary(
        {
            "Dictionary": {
                "0009,1001": ["DS", "Abnormality score", 1, 1, "Lunit"],
                "0011,1002": ["LO", "List", 1, 0, "ACME"],
                "4321,0012": ["ds", "Short"],
            }
        }
    )
    assert entries == (
        DictionaryEntry(0x00091001, "DS", "Abnormality score", "1", "Lunit"),
        DictionaryEntry(0x00111002, "LO", "List", "1-n", "ACME"),
        DictionaryEntry(0x43210012, "DS", "Short", "1", None),
    )
    assert parse_dictionary({}) == ()


@pytest.mark.parametrize(
    "section",
    [
        [],
        {"zzzz,1001": ["DS", "Name"]},
        {"0009,1001": "DS"},
        {"0009,1001": ["DS"]},
        {"0009,1001": ["DS", "Name", "1", 1]},
        {"0009,1001": ["DS", "Name", 1, 1, 7]},
    ],
)
def test_malformed_entries_name_the_option(section: object) -> None:
    with pytest.raises(ConfigurationError, match="Dictionary"):
        parse_dictionary({"Dictionary": section})


def test_private_entries_give_their_vr_in_every_block_of_their_creator() -> None:
    creator = f"TEST {uuid.uuid4().hex}"  # pydicom's dictionaries are process-wide
    assert vr_of(0x00091001, private_creator=creator) == "UN"  # also caches the lookup
    register((DictionaryEntry(0x00091001, "DS", "Score", "1", creator),))
    assert vr_of(0x00091001, private_creator=creator) == "DS"
    assert vr_of(0x00091101, private_creator=creator) == "DS"  # creator reserved 0009,0011
    tags = {
        "0009,0010": {"Type": "String", "Value": creator, "Name": "PrivateCreator"},
        "0009,1001": {"Type": "String", "Value": "98.41", "PrivateCreator": creator},
    }
    assert from_orthanc_tags(tags)["00091001"] == {"vr": "DS", "Value": [98.41]}


def test_public_entries_give_their_vr_and_keyword() -> None:
    keyword = f"Test{uuid.uuid4().hex}"
    register((DictionaryEntry(0x77760010, "IS", keyword, "1", None),))
    assert parse_tag(keyword) == 0x77760010
    assert vr_of(0x77760010) == "IS"
    assert element_from_text(vr_of(0x77760010), "12") == {"vr": "IS", "Value": [12]}
