"""Which attributes each QIDO-RS level indexes (in the core), computes and returns by default.

The levels' names are the core's resource types; the tables follow PS3.18 6.7.1 for the
defaults and measurements of Orthanc 1.10.1 for what its index holds.
"""

from __future__ import annotations

from ...dicom import tags as dicom_tags
from ...dicom.character_sets import utf8_charset_element
from ...dicom.values import element

STUDY, SERIES, INSTANCE = "Study", "Series", "Instance"
PLURAL = {STUDY: "studies", SERIES: "series", INSTANCE: "instances"}


def _tags(*keywords: str) -> frozenset[int]:
    return frozenset(dicom_tags.parse_tag(keyword) for keyword in keywords)


def _tag(keyword: str) -> int:
    return dicom_tags.parse_tag(keyword)


STUDY_INSTANCE_UID = _tag("StudyInstanceUID")
SERIES_INSTANCE_UID = _tag("SeriesInstanceUID")
SOP_INSTANCE_UID = _tag("SOPInstanceUID")
SPECIFIC_CHARACTER_SET = _tag("SpecificCharacterSet")
RETRIEVE_URL = _tag("RetrieveURL")
INSTANCE_AVAILABILITY = _tag("InstanceAvailability")
MODALITIES_IN_STUDY = _tag("ModalitiesInStudy")
SOP_CLASSES_IN_STUDY = _tag("SOPClassesInStudy")
NUMBER_OF_STUDY_RELATED_SERIES = _tag("NumberOfStudyRelatedSeries")
NUMBER_OF_STUDY_RELATED_INSTANCES = _tag("NumberOfStudyRelatedInstances")
NUMBER_OF_SERIES_RELATED_INSTANCES = _tag("NumberOfSeriesRelatedInstances")

# The main DICOM tags Orthanc 1.10.1 indexes (measured: /tools/find Expand on a full dataset).
INDEXED = {
    STUDY: _tags(
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDs",
        "StudyDate", "StudyTime", "StudyID", "StudyDescription", "AccessionNumber",
        "StudyInstanceUID", "RequestedProcedureDescription", "InstitutionName",
        "RequestingPhysician", "ReferringPhysicianName",
    ),
    SERIES: _tags(
        "SeriesDate", "SeriesTime", "Modality", "Manufacturer", "StationName",
        "SeriesDescription", "BodyPartExamined", "SequenceName", "ProtocolName", "SeriesNumber",
        "CardiacNumberOfImages", "ImagesInAcquisition", "NumberOfTemporalPositions",
        "NumberOfSlices", "NumberOfTimeSlices", "SeriesInstanceUID", "ImageOrientationPatient",
        "SeriesType", "OperatorsName", "PerformedProcedureStepDescription",
        "AcquisitionDeviceProcessingDescription", "ContrastBolusAgent",
    ),
    INSTANCE: _tags(
        "InstanceCreationDate", "InstanceCreationTime", "AcquisitionNumber", "ImageIndex",
        "InstanceNumber", "NumberOfFrames", "TemporalPositionIdentifier", "SOPInstanceUID",
        "ImagePositionPatient", "ImageComments", "ImageOrientationPatient",
    ),
}  # fmt: skip

# Attributes computed here, by the level they describe.
COMPUTED = {
    STUDY: frozenset(
        {
            MODALITIES_IN_STUDY,
            SOP_CLASSES_IN_STUDY,
            NUMBER_OF_STUDY_RELATED_SERIES,
            NUMBER_OF_STUDY_RELATED_INSTANCES,
        }
    ),
    SERIES: frozenset({NUMBER_OF_SERIES_RELATED_INSTANCES}),
    INSTANCE: frozenset(),
}
ALWAYS_AVAILABLE = frozenset({SPECIFIC_CHARACTER_SET, RETRIEVE_URL, INSTANCE_AVAILABILITY})

# Default return attributes (PS3.18 table 6.7.1-2, -2a, -2b), without RetrieveURL.
DEFAULTS = {
    STUDY: _tags(
        "StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability",
        "ModalitiesInStudy", "ReferringPhysicianName", "TimezoneOffsetFromUTC", "PatientName",
        "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
        "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
    ),
    SERIES: _tags(
        "Modality", "TimezoneOffsetFromUTC", "SeriesDescription", "SeriesInstanceUID",
        "SeriesNumber", "NumberOfSeriesRelatedInstances", "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime", "RequestAttributesSequence",
    ),
    INSTANCE: _tags(
        "SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "TimezoneOffsetFromUTC",
        "InstanceNumber", "Rows", "Columns", "BitsAllocated", "NumberOfFrames",
    ),
}  # fmt: skip
LEVELS = (STUDY, SERIES, INSTANCE)
UID_TAGS = {STUDY: STUDY_INSTANCE_UID, SERIES: SERIES_INSTANCE_UID, INSTANCE: SOP_INSTANCE_UID}
UID_KEYWORDS = {level: dicom_tags.keyword_of(tag) for level, tag in UID_TAGS.items()}
"""Each level's UID as the core's index names it."""
FROM_SERIES_OF_STUDY = COMPUTED[STUDY] - {NUMBER_OF_STUDY_RELATED_SERIES}
"""The study attributes computed from its series (counting them needs only the study)."""
# Shared by every dataset of an answer: the JSON model is Unicode, sent as UTF-8.
CONSTANT_ELEMENTS = {
    dicom_tags.tag_key(SPECIFIC_CHARACTER_SET): utf8_charset_element(),
    dicom_tags.tag_key(INSTANCE_AVAILABILITY): element("CS", ["ONLINE"]),
}


def levels_down_to(level: str) -> tuple[str, ...]:
    return LEVELS[: LEVELS.index(level) + 1]


def default_tags(level: str, matched: frozenset[int] = frozenset()) -> frozenset[int]:
    """The level's defaults plus, as the official plugin, the non-computed ones of its parents:
    those of each parent level whose UID is not a matching key (`matched`). PS3.18 tables
    6.7.1-2a/2b leave them out when "{StudyInstanceUID} is specified"; the official plugin
    reads that as a matching key, not the path, and so does Orthanc's suite."""
    tags = set(DEFAULTS[level])
    for parent in levels_down_to(level)[:-1]:
        if UID_TAGS[parent] not in matched:
            tags |= DEFAULTS[parent] - COMPUTED[parent]
    return frozenset(tags | {SPECIFIC_CHARACTER_SET, RETRIEVE_URL})


def indexed_down_to(level: str) -> frozenset[int]:
    """What the core indexes of a resource of the level and of its parents."""
    return frozenset().union(*(INDEXED[each] for each in levels_down_to(level)))


def available_without_tags(level: str) -> frozenset[int]:
    """What an answer can hold without reading an instance: indexed or computed attributes."""
    return ALWAYS_AVAILABLE | COMPUTED[level] | indexed_down_to(level)


# What instance summaries hold: the instance defaults the core does not index.
SUMMARY = default_tags(INSTANCE) - available_without_tags(INSTANCE)
