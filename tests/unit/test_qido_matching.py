"""QIDO-RS query parameters: matching kinds, includefield, paging, and matching on tags."""

from __future__ import annotations

import time

import pytest

from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.services.qido.matching import (
    MatchKind,
    parse_attribute,
    parse_matcher,
    parse_search,
    temporal_interval,
    values_at,
    wildcard_matches,
)

PATIENT_NAME, STUDY_DATE, STUDY_UID = 0x00100010, 0x00080020, 0x0020000D
REQUEST_ATTRIBUTES, SPS_ID = 0x00400275, 0x00400009


def bad(parameters: dict[str, str]) -> HttpError:
    with pytest.raises(HttpError) as caught:
        parse_search(parameters)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize("name", ["PatientName", "00100010", "0010,0010", "(0010,0010)"])
def test_attribute_by_keyword_or_tag(name: str) -> None:
    assert parse_attribute(name) == (PATIENT_NAME,)


def test_attribute_inside_sequence() -> None:
    assert parse_attribute("00400275.00400009") == (REQUEST_ATTRIBUTES, SPS_ID)
    assert parse_attribute("RequestAttributesSequence.ScheduledProcedureStepID") == (
        REQUEST_ATTRIBUTES,
        SPS_ID,
    )


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Foo": "1"}, "Unknown attribute 'Foo'"),
        ({"0010001G": "1"}, "Unknown attribute '0010001G'"),
        ({"PatientName.PatientID": "1"}, "is not a sequence"),
        ({"": "1"}, "Empty attribute name"),
        ({"StudyDate": "2020-2021"}, "Malformed DA value"),
        ({"StudyDate": "20200230x"}, "Malformed DA value"),
        ({"StudyDate": "-"}, "Malformed DA value"),
        ({"StudyDate": "2020*"}, "Wildcards are not allowed"),
        ({"StudyInstanceUID": "1.2.*"}, "Wildcards are not allowed for 'StudyInstanceUID'"),
        ({"SeriesNumber": "1?"}, "Wildcards are not allowed for 'SeriesNumber' (VR IS"),
        ({"StudyTime": "25h"}, "Malformed TM value"),
        ({"StudyInstanceUID": "1.2.abc"}, "Malformed StudyInstanceUID"),
        ({"StudyInstanceUID": "1.2,,1.3"}, "Empty value in the list"),
        ({"limit": "-1"}, "'limit' must be a non-negative integer"),
        ({"limit": "ten"}, "'limit' must be a non-negative integer"),
        ({"offset": "1.5"}, "'offset' must be a non-negative integer"),
        ({"limit": "99999999999"}, "too large"),
        ({"fuzzymatching": "maybe"}, "must be true or false"),
        ({"includefield": "NotAKeyword"}, "Unknown attribute"),
        ({"RequestAttributesSequence": "x"}, "empty value"),
        ({"PatientName": "*" * 300}, "longer than"),
    ],
)
def test_bad_parameters_are_400_with_a_clear_message(
    parameters: dict[str, str], message: str
) -> None:
    assert message in bad(parameters).message


def test_reserved_parameters() -> None:
    query = parse_search(
        {
            "limit": "10",
            "offset": "20",
            "fuzzymatching": "true",
            "includefield": "00081030,Modality",
        }
    )
    assert (query.limit, query.offset, query.fuzzy_matching) == (10, 20, True)
    assert query.include == {0x00081030, 0x00080060}
    assert not query.include_all and not query.matchers


def test_repeated_includefield_and_all() -> None:
    query = parse_search({"includefield": ["StudyDescription", "all"]})
    assert query.include_all
    assert query.include == {0x00081030}


def test_limit_zero_means_no_limit_as_in_the_core() -> None:
    assert parse_search({"limit": "0"}).limit is None


@pytest.mark.parametrize(
    ("name", "value", "kind", "values"),
    [
        ("PatientName", "", MatchKind.UNIVERSAL, ()),
        ("PatientName", "*", MatchKind.UNIVERSAL, ()),
        ("StudyDate", "", MatchKind.UNIVERSAL, ()),
        ("PatientName", "Doe^John", MatchKind.SINGLE_VALUE, ("Doe^John",)),
        ("PatientName", "Do?^*", MatchKind.WILDCARD, ("Do?^*",)),
        ("StudyDate", "20200101", MatchKind.SINGLE_VALUE, ("20200101",)),
        ("StudyDate", "20200101-", MatchKind.RANGE, ("20200101", "")),
        ("StudyDate", "-20201231", MatchKind.RANGE, ("", "20201231")),
        ("StudyDate", "20200101-20201231", MatchKind.RANGE, ("20200101", "20201231")),
        ("StudyTime", "0800-123000.5", MatchKind.RANGE, ("0800", "123000.5")),
        ("AcquisitionDateTime", "20200101-20200102120000+0100", MatchKind.RANGE,
         ("20200101", "20200102120000+0100")),
        ("StudyInstanceUID", "1.2.3", MatchKind.SINGLE_VALUE, ("1.2.3",)),
        ("AcquisitionDateTime", "202006-0500", MatchKind.SINGLE_VALUE, ("202006-0500",)),
        ("AcquisitionDateTime", "202006-2022", MatchKind.RANGE, ("202006", "2022")),  # no offset
        ("StudyInstanceUID", "1.2.3,1.2.4", MatchKind.LIST, ("1.2.3", "1.2.4")),
        ("StudyInstanceUID", "1.2.3\\1.2.4", MatchKind.LIST, ("1.2.3", "1.2.4")),
        ("ModalitiesInStudy", "CT,MR", MatchKind.LIST, ("CT", "MR")),
        ("PatientName", " Doe^John  ", MatchKind.SINGLE_VALUE, ("Doe^John",)),  # padding
        ("PatientName", "  ", MatchKind.UNIVERSAL, ()),
        ("ImageComments", " indented ", MatchKind.SINGLE_VALUE, (" indented",)),  # LT
    ],
)  # fmt: skip
def test_matching_kinds(name: str, value: str, kind: MatchKind, values: tuple) -> None:
    matcher = parse_matcher(name, value)
    assert (matcher.kind, matcher.values) == (kind, values)


def test_a_reversed_range_matches_nothing() -> None:
    assert not parse_matcher("StudyDate", "20211231-20200101").can_match
    assert not parse_matcher("StudyTime", "11-10").can_match
    assert parse_matcher("StudyTime", "1015-10").can_match  # 10:15:00 to 10:59:59.999999
    assert parse_matcher("StudyDate", "-20200101").can_match


@pytest.mark.parametrize(
    ("vr", "text", "interval"),
    [
        ("DA", "20200115", (20200115, 20200115)),
        ("DA", "2020.01.15", (20200115, 20200115)),  # legacy form
        ("TM", "10", (100000000000, 105959999999)),
        ("TM", "1015", (101500000000, 101559999999)),
        ("TM", "101530", (101530000000, 101530999999)),
        ("TM", "101530.25", (101530250000, 101530259999)),
        ("TM", "10:15:30", (101530000000, 101530999999)),  # legacy form
        ("DT", "2020", (20200101000000000000, 20201231235959999999)),
        ("DT", "20200115103000+0100", (20200115103000000000, 20200115103000999999)),
        ("TM", "", None),
        ("TM", "1015.5", None),  # a fraction only after the seconds
        ("TM", "noon", None),
    ],
)
def test_temporal_values_name_the_interval_of_their_precision(
    vr: str, text: str, interval: tuple[int, int] | None
) -> None:
    assert temporal_interval(vr, text) == interval


def test_matching_keys_are_returned() -> None:
    query = parse_search({"PatientName": "A*", "includefield": "StudyDescription"})
    assert query.returned_tags == {PATIENT_NAME, 0x00081030}


def test_only_sequence_keys_are_matched_here() -> None:
    query = parse_search({"PatientName": "A*", "StudyDate": "", "00400275.00400009": "X"})
    assert [m.tag for m in query.core_matchers] == [PATIENT_NAME]
    assert [m.path for m in query.sequence_matchers] == [(REQUEST_ATTRIBUTES, SPS_ID)]


@pytest.mark.parametrize(
    ("name", "value", "candidate", "case_sensitive", "expected"),
    [
        ("PatientName", "Doe^John", "Doe^John", True, True),
        ("PatientName", "doe^john", "Doe^John", False, True),
        ("PatientName", "doe^john", "Doe^John", True, False),
        ("PatientName", "GUSEVA*", "Guseva^Anna", False, True),
        ("PatientName", "гусева*", "Гусева^Анна", False, True),
        ("PatientName", "MÜLLER*", "Müller^Jürgen", False, True),
        ("PatientName", "muller*", "Müller^Jürgen", False, False),  # accents count
        ("PatientName", "D?e*", "Doe^John", True, True),
        ("PatientName", "D?e", "Doe^John", True, False),
        ("PatientName", "a.b*", "axb", True, False),
        ("StudyDescription", "chest*", "Chest CT", False, False),  # only PN ignores case
        ("StudyDate", "20200101-20201231", "20200615", True, True),
        ("StudyDate", "20200101-20201231", "20210101", True, False),
        ("StudyDate", "-20201231", "19991231", True, True),
        ("StudyDate", "20200101-", "", True, False),
        ("StudyDate", "-20200101", "", True, False),  # an empty date is in no range
        ("StudyTime", "10", "105959.9", True, True),  # a partial time is an interval
        ("StudyTime", "10", "110000", True, False),
        ("StudyTime", "-1015", "101530", True, True),
        ("StudyTime", "1015-", "1014", True, False),
        ("StudyTime", "101530", "101530.5", True, True),
        ("StudyTime", "101530.5", "101530", True, False),
        ("StudyTime", "0800-0900", "08:30", True, True),
        ("StudyTime", "0800-0900", "", True, False),
        ("AccessionNumber", "**", "", True, True),  # "*" matches a zero length value too
        ("AccessionNumber", "A*", "", True, False),
        ("AccessionNumber", "ACC", "acc", True, False),
        ("AccessionNumber", "ACC", "ACC ", True, True),  # padding is not significant
        ("ImageComments", " x", " x ", True, True),  # but leading spaces of texts are
        ("ImageComments", " x", "x", True, False),
        ("StudyInstanceUID", "1.2,1.3", "1.3", True, True),
        ("StudyInstanceUID", "1.2,1.3", "1.4", True, False),
        ("PatientName", "", "", True, True),
    ],
)  # fmt: skip
def test_matching_rules(
    name: str, value: str, candidate: str, case_sensitive: bool, expected: bool
) -> None:
    assert parse_matcher(name, value).matches([candidate], case_sensitive) is expected


def test_multi_valued_attribute_matches_when_one_value_does() -> None:
    assert parse_matcher("ImageType", "AXIAL").matches(["ORIGINAL", "AXIAL"], True)


def test_wildcard_matching_takes_everything_else_literally() -> None:
    assert wildcard_matches("a+(b)*", "a+(b)xyz")
    assert not wildcard_matches("a+(b)*", "aa(b)")


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("", "", True),
        ("*", "", True),
        ("**", "", True),
        ("?", "", False),
        ("a*", "abc", True),
        ("*c", "abc", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("*b*", "abc", True),
        ("*b*d", "abcbd", True),
        ("*b*d", "abcbe", False),
        ("a*b*c", "aXbYbZc", True),
        ("a*b", "ab\nb", True),
    ],
)
def test_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert wildcard_matches(pattern, value) is expected


def test_wildcard_matching_never_backtracks_exponentially() -> None:
    started = time.monotonic()
    assert not wildcard_matches("*a" * 100 + "*b", "a" * 256)  # a regex: minutes at 8 stars
    assert time.monotonic() - started < 1


DATASET = {
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小東"}]},
    "00200013": {"vr": "IS", "Value": [7]},
    "00400275": {
        "vr": "SQ",
        "Value": [
            {"00400009": {"vr": "SH", "Value": ["S1"]}},
            {"00400009": {"vr": "SH", "Value": ["S2"]}},
            {"00400009": {"vr": "SH"}},
        ],
    },
}


def test_values_at_goes_through_every_item() -> None:
    assert values_at(DATASET, (REQUEST_ATTRIBUTES, SPS_ID)) == ["S1", "S2"]
    assert values_at(DATASET, (PATIENT_NAME,)) == ["Wang^XiaoDong=王^小東"]
    assert values_at(DATASET, (0x00200013,)) == ["7"]
    assert values_at(DATASET, (0x00080020,)) == []
    assert values_at(DATASET, (0x00081111, 0x00081150)) == []


def matches_dataset(name: str, value: str) -> bool:
    matcher = parse_matcher(name, value)
    return matcher.matches(values_at(DATASET, matcher.path), False)


def test_matching_inside_sequences() -> None:
    assert matches_dataset("00400275.00400009", "S2")
    assert not matches_dataset("00400275.00400009", "S3")
    assert matches_dataset("00400275.00400009", "S*")
    assert matches_dataset("PatientName", "*王*")
