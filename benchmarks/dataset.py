"""The benchmark data set, derived from pydicom's real test files and cached in benchmarks/data/.

- a 300-slice CT series from CT_small.dcm: 512x512 slices (the 128x128 image upsampled with
  per-slice noise), RLE Lossless like many archives store them (~360 kB each), so that
  retrieval "with transcoding" and rendered frames really decode something;
- 400 small studies (CT, MR and secondary-capture templates) of 300 patients with varied
  names (non-ASCII included, UTF-8), dates, modalities and descriptions;
- on demand, in memory only: uncompressed 2048x2048 CT instances making up a STOW-RS body of
  a given size (for the memory scenario).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import RLELossless, generate_uid

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
FORMAT_VERSION = 2
UID_PREFIX = "1.2.826.0.1.3680043.8.498.77."
CT_SLICES = 300
CT_SIZE = 512
SMALL_STUDIES = 400
SMALL_PATIENTS = 300
INSTANCES_PER_SMALL_STUDY = 2
BIG_SIZE = 2048

FAMILY_NAMES = (
    "Müller", "Martin", "García", "Smith", "Dubois", "Nguyen", "Kowalski", "Øster", "Núñez",
    "Møller", "Johansson", "Rossi", "Moreau", "Mendes", "Łukasiewicz", "Šimić", "Brown",
    "Papadopoulos", "Ó Briain", "Szőke", "Andersson", "Meyer", "Lefèvre", "Marković",
)  # fmt: skip
GIVEN_NAMES = (
    "Anna", "José", "Zoë", "François", "Björn", "Łucja", "Chloé", "Mario", "Jürgen", "Ana",
    "Oleg", "Sofía", "Emil", "Ingrid", "Noé", "Marie", "Ahmed", "Eva",
)  # fmt: skip
# Names with an ideographic or other-script component group, as Japanese/Chinese sites send.
SCRIPT_NAMES = (
    "Yamada^Tarou=山田^太郎",
    "Wang^XiaoDong=王^小東",
    "Ivanov^Pyotr=Иванов^Пётр",
    "Kim^Minjun=김^민준",
)
DESCRIPTIONS = (
    "Chest", "Abdomen", "Head", "Knee left", "Spine lumbar", "Pelvis", "Thorax follow-up",
    "Épaule droite", "Hand", "Cardiac",
)  # fmt: skip
# Template file and modality; secondary capture stands in for the modalities without one.
MODALITY_TEMPLATES = (
    ("CT", "CT_small.dcm"),
    ("MR", "MR_small.dcm"),
    ("US", "SC_rgb_small_odd.dcm"),
    ("CR", "SC_rgb_small_odd.dcm"),
    ("DX", "SC_rgb_small_odd.dcm"),
    ("XA", "SC_rgb_small_odd.dcm"),
    ("OT", "SC_rgb_small_odd.dcm"),
)


@dataclass(frozen=True)
class SmallStudy:
    study_uid: str
    series_uid: str
    modality: str


@dataclass(frozen=True)
class BenchData:
    """What the scenarios need to know about the generated files."""

    ct_study_uid: str
    ct_series_uid: str
    ct_instance_uids: tuple[str, ...]
    small_studies: tuple[SmallStudy, ...]
    directory: str

    @property
    def ct_files(self) -> list[Path]:
        return [Path(self.directory) / "ct" / f"{n:04d}.dcm" for n in range(CT_SLICES)]

    @property
    def small_files(self) -> list[Path]:
        count = len(self.small_studies) * INSTANCES_PER_SMALL_STUDY
        return [Path(self.directory) / "small" / f"{n:04d}.dcm" for n in range(count)]

    @property
    def middle_instance_uid(self) -> str:
        return self.ct_instance_uids[len(self.ct_instance_uids) // 2]

    def to_json(self) -> dict:
        return {"version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, value: dict) -> BenchData:
        return cls(
            value["ct_study_uid"],
            value["ct_series_uid"],
            tuple(value["ct_instance_uids"]),
            tuple(SmallStudy(**study) for study in value["small_studies"]),
            value["directory"],
        )


def uid(*entropy: object) -> str:
    """A deterministic UID, so a cached data set and a regenerated one agree."""
    return str(generate_uid(UID_PREFIX, [str(part) for part in entropy]))


def prepare(directory: Path = DATA_DIR) -> BenchData:
    """The cached data set, generated first when missing or from an older format."""
    manifest = directory / "manifest.json"
    if manifest.exists():
        data = BenchData.from_json(json.loads(manifest.read_text()))
        stored = json.loads(manifest.read_text()).get("version")
        complete = all(path.exists() for path in data.ct_files + data.small_files)
        if stored == FORMAT_VERSION and complete and data.directory == str(directory):
            return data
    log.warning("generating the benchmark data set in %s (once, about a minute)", directory)
    data = BenchData(
        *generate_ct_series(directory / "ct"),
        small_studies=generate_small_studies(directory / "small"),
        directory=str(directory),
    )
    manifest.write_text(json.dumps(data.to_json(), indent=1))
    return data


def read_template(name: str) -> Dataset:
    return pydicom.dcmread(get_testdata_file(name))


def set_instance_uids(ds: Dataset, study: str, series: str, instance: str) -> None:
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = instance
    ds.file_meta.MediaStorageSOPInstanceUID = instance


def copy_of(template: Dataset) -> Dataset:
    """A deep copy: `Dataset.copy` shares the elements, so edits would leak into the template."""
    return copy.deepcopy(template)


def upsampled_ct_pixels(source: np.ndarray, index: int, size: int) -> np.ndarray:
    """The source image scaled to `size`, shifted and with noise so each slice differs."""
    factor = size // source.shape[0]
    image = np.kron(source.astype(np.int32), np.ones((factor, factor), dtype=np.int32))
    image = np.roll(image, index % 32, axis=0)
    noise = np.random.default_rng(index).normal(0, 12, image.shape).astype(np.int32)
    return np.clip(image + noise, -1024, 3071).astype(np.int16)


def generate_ct_series(directory: Path) -> tuple[str, str, tuple[str, ...]]:
    """The big CT series; returns its study, series and instance UIDs."""
    directory.mkdir(parents=True, exist_ok=True)
    template = read_template("CT_small.dcm")
    study, series = uid("ct-study"), uid("ct-series")
    frame_of_reference = uid("ct-frame")
    instances = tuple(uid("ct-instance", n) for n in range(CT_SLICES))
    spacing = float(template.PixelSpacing[0]) * template.Rows / CT_SIZE
    source = template.pixel_array
    for index, instance in enumerate(instances):
        ds = copy_of(template)
        set_instance_uids(ds, study, series, instance)
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PatientName, ds.PatientID = "Bench^CT Series", "CT-BENCH"
        ds.StudyDate = ds.SeriesDate = "20240115"
        ds.StudyDescription, ds.SeriesDescription = "Benchmark CT", "Axial 1 mm"
        ds.InstanceNumber = index + 1
        z = -150.0 + index
        ds.ImagePositionPatient = [-spacing * CT_SIZE / 2, -spacing * CT_SIZE / 2, z]
        ds.SliceLocation = z
        ds.Rows = ds.Columns = CT_SIZE
        ds.PixelSpacing = [spacing, spacing]
        pixels = upsampled_ct_pixels(source, index, CT_SIZE)
        ds.compress(RLELossless, pixels, generate_instance_uid=False)
        ds.save_as(directory / f"{index:04d}.dcm", enforce_file_format=True)
    return study, series, instances


def patient_name(patient: int) -> str:
    if patient % 17 == 0:
        return SCRIPT_NAMES[(patient // 17) % len(SCRIPT_NAMES)]
    family = FAMILY_NAMES[patient % len(FAMILY_NAMES)]
    given = GIVEN_NAMES[(patient * 7) % len(GIVEN_NAMES)]
    return f"{family}^{given}"


def generate_small_studies(directory: Path) -> tuple[SmallStudy, ...]:
    """400 studies of one series with two instances each, files numbered in order."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2024)
    templates = {name: read_template(name) for _, name in MODALITY_TEMPLATES}
    studies = []
    for index in range(SMALL_STUDIES):
        modality, template_name = MODALITY_TEMPLATES[int(rng.integers(len(MODALITY_TEMPLATES)))]
        patient = int(rng.integers(SMALL_PATIENTS))
        study = SmallStudy(uid("small-study", index), uid("small-series", index), modality)
        date = f"{int(rng.integers(1995, 2025))}{int(rng.integers(1, 13)):02d}"
        date += f"{int(rng.integers(1, 29)):02d}"
        for number in range(INSTANCES_PER_SMALL_STUDY):
            ds = copy_of(templates[template_name])
            ds.SpecificCharacterSet = "ISO_IR 192"
            instance = uid("small-instance", index, number)
            set_instance_uids(ds, study.study_uid, study.series_uid, instance)
            ds.PatientName, ds.PatientID = patient_name(patient), f"SMALL-{patient:04d}"
            ds.PatientBirthDate = f"{1930 + patient % 80}0{1 + patient % 9}15"
            ds.PatientSex = "FM"[patient % 2]
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
            ds.StudyTime = f"{8 + index % 10:02d}{index % 60:02d}00"
            ds.AccessionNumber, ds.StudyID = f"ACC{index:06d}", str(index)
            ds.StudyDescription = DESCRIPTIONS[index % len(DESCRIPTIONS)]
            ds.SeriesDescription = f"{modality} series"
            ds.ReferringPhysicianName = patient_name(patient + 1)
            ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, 1, number + 1
            path = directory / f"{index * INSTANCES_PER_SMALL_STUDY + number:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
        studies.append(study)
    return tuple(studies)


def big_instances(total_bytes: int) -> Iterator[bytes]:
    """Uncompressed 2048x2048 CT instances (8 MB each) adding up to at least `total_bytes`."""
    template = read_template("CT_small.dcm")
    tiles = BIG_SIZE // template.Rows
    pixels = np.tile(template.pixel_array, (tiles, tiles)).tobytes()
    study, series = uid("big-study"), uid("big-series")
    for index in range(math.ceil(total_bytes / len(pixels))):
        ds = copy_of(template)
        set_instance_uids(ds, study, series, uid("big-instance", index))
        ds.PatientName, ds.PatientID = "Bench^Big Upload", "BIG-BENCH"
        ds.InstanceNumber = index + 1
        ds.Rows = ds.Columns = BIG_SIZE
        ds.PixelData = pixels
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        yield buffer.getvalue()
