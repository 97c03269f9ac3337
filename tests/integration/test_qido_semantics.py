"""QIDO-RS matching against an independent model of PS3.4 C.2.2.2, on random queries.

A generated data set (patients, studies, series, instances with varied names, IDs, dates,
times, date-times, numbers, UIDs, multi-valued attributes) is stored in an Orthanc of its own;
seeded random queries at the three levels (single values, case variants, wildcards, universal
keys, UID and code lists, DA/TM/DT ranges of every form, partial values) are answered by the
plugin and by `Model`, a direct reading of the standard applied to the generated values. The
result sets must be equal.

The model's reading of the standard, where it leaves a choice:
- PN matching is case-insensitive unless QidoCaseSensitive (PS3.4 C.2.2.2.1 lets it be), and
  sensitive to accents (as the core's matching): "muller" does not match "Müller";
- a DA/TM/DT value matches the whole interval of its precision: TM "10" is 10:00:00 to
  10:59:59.999999, in a single value as in a range bound (a bound "1015" includes 10:15:30);
  a stored value is the instant it names (its missing components the smallest); DT offsets
  are ignored;
- a reversed range matches nothing; an empty value matches no range, only wildcards that
  match "" ("**");
- a multi-valued attribute matches when one of its values does; ModalitiesInStudy when one
  series of the study does.
"""

from __future__ import annotations

import io
import math
import random
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.harness import Orthanc

ROOT = "/dicom-web/"
SEED = 20261203
QUERIES = 400

PATIENT_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDs")
STUDY_KEYS = (
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "StudyID",
    "ReferringPhysicianName",
    "StudyInstanceUID",
)
SERIES_KEYS = (
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "SeriesTime",
    "SeriesInstanceUID",
    "OperatorsName",
    "BodyPartExamined",
    "StationName",
)
INSTANCE_KEYS = (
    "InstanceNumber",
    "SOPInstanceUID",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "ImageComments",
    "AcquisitionDateTime",  # not indexed: read from the instances
)
VR = {
    "PatientName": "PN",
    "PatientID": "LO",
    "PatientBirthDate": "DA",
    "PatientSex": "CS",
    "OtherPatientIDs": "LO",
    "OperatorsName": "PN",
    "BodyPartExamined": "CS",
    "StationName": "SH",
    "InstanceCreationDate": "DA",
    "InstanceCreationTime": "TM",
    "ImageComments": "LT",
    "AcquisitionDateTime": "DT",
    "StudyDate": "DA",
    "StudyTime": "TM",
    "AccessionNumber": "SH",
    "StudyDescription": "LO",
    "StudyID": "SH",
    "ReferringPhysicianName": "PN",
    "StudyInstanceUID": "UI",
    "ModalitiesInStudy": "CS",
    "Modality": "CS",
    "SeriesNumber": "IS",
    "SeriesDescription": "LO",
    "SeriesDate": "DA",
    "SeriesTime": "TM",
    "SeriesInstanceUID": "UI",
    "InstanceNumber": "IS",
    "SOPInstanceUID": "UI",
}
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
RESULT_UID = {"studies": "0020000D", "series": "0020000E", "instances": "00080018"}

NAMES = [
    "Doe^John",
    "DOE^JANE",
    "doe^john^^Dr",
    "van der Berg^Anna",
    "O'Brien^Liam",
    "Müller^Jürgen",
    "MULLER^JURGEN",
    "Smith",
    "smith^Anna Maria",
    "José^García",
    "Lee^Min-Ho",
    "Øster^Åse",
    "Wang^XiaoDong=王^小東",
    "Yamada^Tarou=山田^太郎=やまだ^たろう",
    "Гусева^Анна",
    "",
]
DESCRIPTIONS = ["Chest CT", "chest ct", "Brain MRI w/o", "BRAIN MRI", "Abdomen pelvis", "", "Knee?"]
MODALITIES = ["CT", "MR", "US", "SR", "PT", "OT"]
SEXES = ["M", "F", "O", ""]


# --- The data set -------------------------------------------------------------------------------


@dataclass
class Entity:
    """One instance of the data set with every attribute of its levels, as stored."""

    values: dict[str, str]


def random_date(rng: random.Random) -> str:
    return f"{rng.randint(2018, 2022)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"


def random_time(rng: random.Random) -> str:
    hours, minutes, seconds = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    full = f"{hours:02d}{minutes:02d}{seconds:02d}"
    form = rng.random()
    if form < 0.1:
        return full[:2]
    if form < 0.25:
        return full[:4]
    if form < 0.5:
        return f"{full}.{rng.randint(0, 999999):06d}"[: rng.randint(8, 13)]
    return full


def random_date_time(rng: random.Random) -> str:
    """A DT of any precision (YYYY to fractions), with a UTC offset sometimes."""
    full = random_date(rng) + random_time(rng).ljust(6, "0")
    value = full[: rng.choice([4, 6, 8, 10, 12, 14, len(full)])].rstrip(".")
    return value + (rng.choice(["+0100", "-0500"]) if rng.random() < 0.2 else "")


def maybe(rng: random.Random, value: str, empty: float = 0.1) -> str:
    return "" if rng.random() < empty else value


def generate(rng: random.Random) -> list[Entity]:
    entities = []
    for number in range(14):
        patient = {
            "PatientName": rng.choice(NAMES),
            "PatientID": rng.choice(["PID", "pid", "Pid ", "P-"]) + f"{number:03d}",
            "PatientBirthDate": maybe(rng, random_date(rng).replace("20", "19", 1)),
            "PatientSex": rng.choice(SEXES),
            # Multi-valued: a key matches when one of the values does.
            "OtherPatientIDs": "\\".join(rng.sample(["X1", "x2", "Y3"], rng.randint(0, 2))),
        }
        for _ in range(rng.randint(1, 3)):
            study = patient | {
                "StudyDate": maybe(rng, random_date(rng)),
                "StudyTime": maybe(rng, random_time(rng)),
                "AccessionNumber": maybe(rng, rng.choice(["ACC", "acc", "Acc"]) + str(number)),
                "StudyDescription": rng.choice(DESCRIPTIONS),
                "StudyID": maybe(rng, f"S{rng.randint(1, 9)}"),
                "ReferringPhysicianName": rng.choice(NAMES),
                "StudyInstanceUID": generate_uid(),
            }
            for series_number in range(1, rng.randint(2, 4)):
                series = study | {
                    "Modality": rng.choice(MODALITIES),
                    "SeriesNumber": str(series_number + rng.choice([0, 0, 10])),
                    "SeriesDescription": rng.choice(DESCRIPTIONS),
                    "SeriesDate": maybe(rng, study["StudyDate"] or random_date(rng), 0.3),
                    "SeriesTime": maybe(rng, random_time(rng), 0.3),
                    "SeriesInstanceUID": generate_uid(),
                    "OperatorsName": "\\".join(rng.sample(NAMES[:6], rng.randint(0, 2))),
                    "BodyPartExamined": rng.choice(["CHEST", "HEAD", "LUNG", ""]),
                    "StationName": maybe(rng, rng.choice(["ST1", "st1", "Station 2"])),
                }
                for instance_number in range(1, rng.randint(2, 3)):
                    entities.append(
                        Entity(
                            series
                            | {
                                "InstanceNumber": str(instance_number),
                                "SOPInstanceUID": generate_uid(),
                                "InstanceCreationDate": maybe(rng, random_date(rng), 0.3),
                                "InstanceCreationTime": maybe(rng, random_time(rng), 0.3),
                                "ImageComments": rng.choice(DESCRIPTIONS),
                                "AcquisitionDateTime": maybe(rng, random_date_time(rng), 0.2),
                            }
                        )
                    )
    return entities


def dicom_file(source: Path, entity: Entity) -> bytes:
    dataset = pydicom.dcmread(source)
    dataset.SpecificCharacterSet = "ISO_IR 192"
    for keyword, value in entity.values.items():
        setattr(dataset, keyword, value.encode() if VR[keyword] == "PN" else value)
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


# --- The model: PS3.4 C.2.2.2 --------------------------------------------------------------------


def fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def time_bounds(text: str) -> tuple[int, int]:
    """A TM value as the interval of instants (in microseconds) its precision names."""
    main, _, fraction = text.partition(".")
    low_digits = (main + "000000")[:6]
    high_digits = main + "5959"[len(main) - 2 :] if len(main) < 6 else main
    scale = 10 ** (6 - len(fraction))
    low_fraction = int(fraction or 0) * scale
    high_fraction = low_fraction + scale - 1 if fraction else 999999

    def micros(digits: str, part: int) -> int:
        return (int(digits[:2]) * 3600 + int(digits[2:4]) * 60 + int(digits[4:6])) * 10**6 + part

    return micros(low_digits, low_fraction), micros(high_digits, high_fraction)


def date_time_bounds(text: str) -> tuple[int, int]:
    """A DT value (its UTC offset ignored) as the interval of instants (microseconds since
    year 1) its precision names, by calendar arithmetic."""
    main, _, fraction = re.sub(r"[+-]\d{4}$", "", text).partition(".")
    fields = [int(main[:4])] + [int(main[i : i + 2]) for i in range(4, len(main), 2)]
    year, month, day, hour, minute, second = (fields + [1, 1, 0, 0, 0][len(fields) - 1 :])[:6]
    first = datetime(year, month, day, hour, minute, second)
    if fraction:
        first += timedelta(microseconds=int(fraction.ljust(6, "0")))
        end = first + timedelta(microseconds=10 ** (6 - len(fraction)))
    elif len(fields) == 1:
        end = datetime(year + 1, 1, 1)
    elif len(fields) == 2:
        end = datetime(year + month // 12, month % 12 + 1, 1)
    else:
        units = [timedelta(days=1), timedelta(hours=1), timedelta(minutes=1), timedelta(seconds=1)]
        end = first + units[len(fields) - 3]

    def micros(moment: datetime) -> int:
        return (moment - datetime(1, 1, 1)) // timedelta(microseconds=1)

    return micros(first), micros(end) - 1


def bounds(vr: str, text: str) -> tuple[int, int]:
    if vr == "DA":
        return int(text), int(text)
    if vr == "DT":
        return date_time_bounds(text)
    return time_bounds(text)


@dataclass
class Model:
    entities: list[Entity]
    case_sensitive_pn: bool = False

    def results(self, level: str, keys: dict[str, str]) -> set[str]:
        uid = {"studies": "StudyInstanceUID", "series": "SeriesInstanceUID"}.get(
            level, "SOPInstanceUID"
        )
        return {
            entity.values[uid]
            for entity in self.entities
            if all(self.matches(entity, key, value) for key, value in keys.items())
        }

    def stored(self, entity: Entity, key: str) -> list[str]:
        if key == "ModalitiesInStudy":
            study = entity.values["StudyInstanceUID"]
            series = (e for e in self.entities if e.values["StudyInstanceUID"] == study)
            return [e.values["Modality"] for e in series]
        values = (value.strip(" ") for value in entity.values[key].split("\\"))
        return [value for value in values if value]

    def matches(self, entity: Entity, key: str, query: str) -> bool:
        vr = VR[key]
        if query in ("", "*"):
            return True  # universal matching
        # An empty value is matched as "": wildcard "*" matches a zero length value too.
        values = self.stored(entity, key) or [""]
        return any(self.matches_value(vr, query, value) for value in values)

    def matches_value(self, vr: str, query: str, value: str) -> bool:
        if vr in ("DA", "TM", "DT"):
            if not value:
                return False
            if "-" in query:
                low, high = query.split("-")
                lowest = bounds(vr, low)[0] if low else -math.inf
                highest = bounds(vr, high)[1] if high else math.inf
            else:
                lowest, highest = bounds(vr, query)
            return lowest <= bounds(vr, value)[0] <= highest
        if vr in ("UI", "CS") and ("," in query or "\\" in query):
            return value in re.split(r"[,\\]", query)
        insensitive = vr == "PN" and not self.case_sensitive_pn
        if insensitive:
            query, value = fold(query), fold(value)
        if vr in WILDCARD_VRS and ("*" in query or "?" in query):
            parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in query)
            return re.fullmatch("".join(parts), value, re.DOTALL) is not None
        return value == query


# --- Random queries ------------------------------------------------------------------------------


def case_variant(rng: random.Random, text: str) -> str:
    return rng.choice([text.upper(), text.lower(), text.swapcase(), text])


def wildcard_of(rng: random.Random, text: str) -> str:
    if not text:
        return "*"
    cut = rng.randint(0, len(text))
    form = rng.randint(0, 4)
    if form == 0:
        return text[:cut] + "*"
    if form == 1:
        return "*" + text[cut:]
    if form == 2:
        return "*" + text[cut // 2 : cut] + "*"
    chars = list(text)
    for index in rng.sample(range(len(chars)), min(len(chars), rng.randint(1, 2))):
        chars[index] = "?"
    return "".join(chars) + ("*" if form == 4 else "")


def temporal_query(rng: random.Random, vr: str, stored: list[str]) -> str:
    def some() -> str:
        value = rng.choice(stored) if stored and rng.random() < 0.7 else ""
        if vr == "DA":
            return value or random_date(rng)
        if vr == "DT":  # without offset: "-" would make ranges ambiguous
            value = re.sub(r"[+-]\d{4}$", "", value or random_date_time(rng))
            return value[: rng.choice([4, 6, 8, 10, 14, len(value)])].rstrip(".")
        value = value or random_time(rng)
        return value[: rng.choice([2, 4, 6, len(value)])].rstrip(".")

    form = rng.randint(0, 4)
    if form == 0:
        return some()
    if form == 1:
        return f"{some()}-"
    if form == 2:
        return f"-{some()}"
    first, second = sorted([some(), some()], key=lambda v: bounds(vr, v))
    return f"{first}-{second}" if form == 3 else f"{second}-{first}"  # form 4: maybe reversed


def query_value(rng: random.Random, key: str, entities: list[Entity], model: Model) -> str:
    vr = VR[key]
    stored = sorted({v for e in entities for v in model.stored(e, key)})
    if rng.random() < 0.08:
        return rng.choice(["", "*"])
    if vr in ("DA", "TM", "DT"):
        return temporal_query(rng, vr, stored)
    if not stored:
        return "*"
    value = rng.choice(stored)
    if vr in ("UI", "CS") and rng.random() < 0.35:
        members = rng.sample(stored, min(len(stored), rng.randint(1, 3)))
        extra = [generate_uid() if vr == "UI" else "XA"]
        return rng.choice([",", "\\"]).join(members + extra)
    if vr in WILDCARD_VRS and rng.random() < 0.45:
        value = wildcard_of(rng, value)
    if vr not in ("UI", "IS") and rng.random() < 0.4:
        value = case_variant(rng, value)
    return value


LEVEL_KEYS = {
    "studies": PATIENT_KEYS + STUDY_KEYS + ("ModalitiesInStudy",),
    "series": PATIENT_KEYS + STUDY_KEYS + SERIES_KEYS,
    "instances": PATIENT_KEYS + STUDY_KEYS + SERIES_KEYS + INSTANCE_KEYS,
}


def random_queries(
    rng: random.Random, entities: list[Entity], model: Model, count: int
) -> Iterator[tuple[str, dict[str, str]]]:
    for _ in range(count):
        level = rng.choice(list(LEVEL_KEYS))
        keys = rng.sample(LEVEL_KEYS[level], rng.choice([1, 1, 2, 2, 3]))
        yield level, {key: query_value(rng, key, entities, model) for key in keys}


# --- The tests ----------------------------------------------------------------------------------


@dataclass
class Stored:
    """An Orthanc of its own holding the generated data set."""

    orthanc: Orthanc
    entities: list[Entity]


def start_with_data(
    tmp_path_factory: pytest.TempPathFactory, source: Path, overrides: dict[str, Any]
) -> Stored:
    orthanc = Orthanc(tmp_path_factory.mktemp("qido-semantics"), overrides).start()
    entities = generate(random.Random(SEED))
    for entity in entities:
        orthanc.post("/instances", data=dicom_file(source, entity)).raise_for_status()
    return Stored(orthanc, entities)


def found_uids(orthanc: Orthanc, level: str, params: dict[str, Any]) -> list[str]:
    answer = orthanc.get(ROOT + level, params=params)
    assert answer.status_code == 200, f"{level} {params}: {answer.status_code} {answer.text}"
    return [d[RESULT_UID[level]]["Value"][0] for d in answer.json()]


def compare(stored: Stored, model: Model, queries: int, seed: int) -> list[str]:
    """Every query whose results differ from the model's, described."""
    rng = random.Random(seed)
    mismatches = []
    for level, keys in random_queries(rng, model.entities, model, queries):
        found = set(found_uids(stored.orthanc, level, keys))
        expected = model.results(level, keys)
        if found != expected:
            mismatches.append(
                f"{level} {keys}: {len(found)} found, {len(expected)} expected; "
                f"extra {sorted(values_of(model, found - expected, keys))}, "
                f"missing {sorted(values_of(model, expected - found, keys))}"
            )
    return mismatches


def values_of(model: Model, uids: set[str], keys: dict[str, str]) -> list[str]:
    """The queried attributes of the entities of these UIDs (to describe a mismatch)."""
    described = set()
    for entity in model.entities:
        if uids & set(entity.values.values()):
            shown = {k: model.stored(entity, k) for k in keys}
            described.add(repr(shown))
    return list(described)[:4]


@pytest.fixture(scope="module")
def stored(
    tmp_path_factory: pytest.TempPathFactory, test_files: dict[str, Path]
) -> Iterator[Stored]:
    data = start_with_data(tmp_path_factory, test_files["mr"], {})
    yield data
    data.orthanc.stop()


def test_matching_follows_the_standard_on_random_queries(stored: Stored) -> None:
    mismatches = compare(stored, Model(stored.entities), QUERIES, SEED)
    assert not mismatches, f"{len(mismatches)} of {QUERIES}:\n" + "\n".join(mismatches[:15])


def test_pages_of_checked_results_follow_the_full_list(stored: Stored) -> None:
    """Keys the core cannot match exactly are checked here, before limit and offset apply."""
    for level, keys in [
        ("studies", {"StudyTime": "-12"}),  # checked here
        ("series", {"PatientName": "*o*", "Modality": "CT,MR,US,PT"}),
        ("instances", {"StudyDate": "20190101-"}),  # exact in the core: paged there
    ]:
        everything = found_uids(stored.orthanc, level, keys)
        assert len(everything) > 4, (level, keys)
        pages = [
            found_uids(stored.orthanc, level, keys | {"limit": 3, "offset": offset})
            for offset in range(0, len(everything), 3)
        ]
        assert [uid for page in pages for uid in page] == everything


def test_keys_that_match_nothing_and_keys_that_are_not_allowed(stored: Stored) -> None:
    assert found_uids(stored.orthanc, "studies", {"StudyDate": "20221231-20180101"}) == []
    assert found_uids(stored.orthanc, "studies", {"StudyTime": "12-11"}) == []
    for key, value in [("StudyInstanceUID", "1.2.*"), ("SeriesNumber", "1*")]:
        answer = stored.orthanc.get(ROOT + "series", params={key: value})
        assert answer.status_code == 400
        assert "Wildcards are not allowed" in answer.json()["Message"]


def test_case_sensitive_person_names_on_random_queries(
    tmp_path_factory: pytest.TempPathFactory, test_files: dict[str, Path]
) -> None:
    overrides = {"DicomWeb": {"QidoCaseSensitive": True}}
    data = start_with_data(tmp_path_factory, test_files["mr"], overrides)
    try:
        mismatches = compare(data, Model(data.entities, case_sensitive_pn=True), 150, SEED + 1)
    finally:
        data.orthanc.stop()
    assert not mismatches, f"{len(mismatches)} of 150:\n" + "\n".join(mismatches[:15])


def test_padding_of_a_key_is_not_significant(stored: Stored) -> None:
    entity = next(e for e in stored.entities if e.values["AccessionNumber"])
    accession = entity.values["AccessionNumber"]
    expected = found_uids(stored.orthanc, "studies", {"AccessionNumber": accession})
    assert expected
    assert found_uids(stored.orthanc, "studies", {"AccessionNumber": f" {accession}  "}) == expected
