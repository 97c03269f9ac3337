"""Small DICOM datasets built in tests (unit and integration): identified instances, deep
nesting, and their Part 10 bytes."""

from __future__ import annotations

import io

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def part10(dataset: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    """The dataset as a Part 10 file (its file meta information replaced)."""
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def identified(**values: object) -> Dataset:
    """A Secondary Capture instance in a new study and series, with these attributes."""
    dataset = Dataset()
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    dataset.SOPInstanceUID = generate_uid()
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.PatientID = "P"
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    return dataset


def nested(depth: int, before_the_uids: bool = False, **values: object) -> Dataset:
    """An identified instance whose sequences nest `depth` levels deep: in ContentSequence,
    or in ReferencedImageSequence (0008,1140), which comes before the UIDs an identity scan
    looks for."""
    inner = Dataset()
    inner.CodeValue = "x"
    for _ in range(depth - 1):
        outer = Dataset()
        outer.ConceptNameCodeSequence = Sequence([inner])
        inner = outer
    keyword = "ReferencedImageSequence" if before_the_uids else "ContentSequence"
    return identified(**{keyword: Sequence([inner])}, **values)
