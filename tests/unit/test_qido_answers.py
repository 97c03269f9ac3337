"""Datasets kept encoded between searches (qido_answers)."""

from __future__ import annotations

import json

from orthanc_dicomweb.services.qido.answers import EncodedDataset, as_dataset, encode_answer

STUDY = {"0020000D": {"vr": "UI", "Value": ["1.2.3"]}, "00100010": {"vr": "PN", "Value": []}}
OTHER = {"00080020": {"vr": "DA", "Value": ["20240101"]}}


def test_an_answer_mixes_kept_and_new_datasets_in_order() -> None:
    answer = encode_answer([EncodedDataset.of(STUDY), OTHER, EncodedDataset.of(OTHER)])
    assert json.loads(answer) == [STUDY, OTHER, OTHER]


def test_a_kept_dataset_decodes_to_what_was_kept() -> None:
    assert as_dataset(EncodedDataset.of(STUDY)) == STUDY
    assert as_dataset(OTHER) is OTHER


def test_values_orjson_refuses_are_still_written() -> None:
    lone_surrogate = {"00081030": {"vr": "LO", "Value": ["a\udc80b"]}}
    answer = encode_answer([EncodedDataset.of(STUDY), lone_surrogate])
    assert json.loads(answer)[0] == STUDY
    assert json.loads(answer)[1]["00081030"]["vr"] == "LO"


def test_no_datasets_is_an_empty_array() -> None:
    assert encode_answer([]) == b"[]"
