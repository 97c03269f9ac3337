"""Studies for the OHIF browser test: a CT series, an MR, a multi-frame loop, compressed syntaxes.

All are made from the files pydicom ships, each in its own patient and study, with names, dates
and counts that the test then looks for in the viewer.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.harness import PYDICOM_FILES

MULTIFRAME_GRAYSCALE_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
FRAME_TIME = pydicom.tag.Tag(0x0018, 0x1063)


@dataclass(frozen=True)
class Study:
    """What the study list should show for one study."""

    patient_name: str  # DICOM PN, e.g. "Ohif^Chest"
    patient_id: str
    date: str  # YYYYMMDD
    description: str
    modalities: str  # as OHIF lists them, e.g. "MR/OT"
    instances: int
    uid: str

    @property
    def shown_name(self) -> str:
        """The name as OHIF's study list writes it ("Family, Given")."""
        return ", ".join(self.patient_name.split("^"))


def template(name: str) -> Dataset:
    return pydicom.dcmread(PYDICOM_FILES / name)


def retag(ds: Dataset, study: Study, series: str, number: int, series_number: int) -> Dataset:
    """Put a dataset in the given study and series, as a new instance."""
    ds.PatientName, ds.PatientID = study.patient_name, study.patient_id
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study.uid, series
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyDate = ds.SeriesDate = study.date
    ds.StudyTime = ds.SeriesTime = "101500"
    ds.StudyDescription = study.description
    ds.SeriesDescription = f"{study.description} {series_number}"
    ds.AccessionNumber = study.patient_id
    ds.StudyID = study.patient_id
    ds.SeriesNumber, ds.InstanceNumber = series_number, number
    return ds


def encoded(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def shifted(pixels: np.ndarray, index: int) -> np.ndarray:
    """The image moved down and right with the index, so that each slice or frame differs."""
    return np.roll(np.roll(pixels, 6 * index, axis=0), 3 * index, axis=1)


def ct_series(study: Study) -> list[bytes]:
    """Slices of CT_small along z, Explicit VR Little Endian."""
    source = template("CT_small.dcm")
    series, pixels = generate_uid(), source.pixel_array
    files = []
    for index in range(study.instances):
        ds = retag(copy.deepcopy(source), study, series, index + 1, 1)
        x, y, z = (float(v) for v in source.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 5.0 * index]
        ds.SliceLocation = z + 5.0 * index
        ds.PixelData = shifted(pixels, index).astype(pixels.dtype).tobytes()
        files.append(encoded(ds))
    return files


def mr_series(study: Study) -> list[bytes]:
    return [encoded(retag(template("MR_small.dcm"), study, generate_uid(), 1, 1))]


def multiframe_series(study: Study, frames: int = 12) -> list[bytes]:
    """One Multi-frame Grayscale Word SC instance of CT_small frames, 10 frames a second."""
    ds = template("CT_small.dcm")
    stack = np.stack([shifted(ds.pixel_array, i) for i in range(frames)]).astype(np.int16)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MULTIFRAME_GRAYSCALE_WORD_SC
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality = "OT"
    ds.NumberOfFrames = frames
    ds.FrameTime = 100
    ds.FrameIncrementPointer = FRAME_TIME
    ds.PixelData = stack.tobytes()
    return [encoded(retag(ds, study, generate_uid(), 1, 1))]


def compressed_series(study: Study) -> list[bytes]:
    """Two series: an MR in JPEG-LS lossless and an RGB image in JPEG baseline."""
    jpeg_ls = retag(template("MR_small_jpeg_ls_lossless.dcm"), study, generate_uid(), 1, 1)
    jpeg = retag(template("SC_rgb_jpeg_dcmtk.dcm"), study, generate_uid(), 1, 2)
    jpeg.Modality = "OT"
    return [encoded(jpeg_ls), encoded(jpeg)]


def make_studies() -> dict[str, tuple[Study, list[bytes]]]:
    """Every study of the test, by role, with its files."""
    studies = {
        "ct": (Study("Ohif^Chest", "OHIF-CT", "20240115", "Chest CT", "CT", 16, ""), ct_series),
        "mr": (Study("Ohif^Head", "OHIF-MR", "20230310", "Head MR", "MR", 1, ""), mr_series),
        "cine": (Study("Cine^Loop", "OHIF-MF", "20220705", "Cine", "OT", 1, ""), multiframe_series),
        "compressed": (
            Study("Packed^Pixels", "OHIF-JP", "20210920", "Compressed", "MR/OT", 2, ""),
            compressed_series,
        ),
    }
    made = {}
    for role, (study, build) in studies.items():
        study = Study(**{**study.__dict__, "uid": generate_uid()})
        made[role] = (study, build(study))
    return made
