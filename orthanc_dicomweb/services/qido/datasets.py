"""The datasets of a QIDO-RS answer: a result's index entries (its own and its parents'), its
instance's attributes read, and the attributes computed here, merged; kept between searches
(encoded: `answers`) with the index entry they were made from.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from functools import cached_property, lru_cache
from typing import Any

from ...dicom import json_model as dicom_json
from ...dicom.tags import keyword_of, parse_tag, tag_key, vr_of
from ...dicom.values import element, element_from_text
from ...errors import HttpError
from ...http.urls import instance_url, series_url, study_url
from ...orthanc.core import get_if_exists
from .answers import AnyDataset, EncodedDataset, as_dataset
from .attributes import (
    CONSTANT_ELEMENTS,
    FROM_SERIES_OF_STUDY,
    INSTANCE,
    LEVELS,
    MODALITIES_IN_STUDY,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    RETRIEVE_URL,
    SERIES,
    SOP_CLASSES_IN_STUDY,
    STUDY,
    UID_KEYWORDS,
)
from .index import uri_of
from .scope import Hit, SearchScope


class AnswerDatasets:
    """Makes (or finds kept) the dataset of each result of a search."""

    def __init__(self, scope: SearchScope) -> None:
        self.scope = scope

    @cached_property
    def indexed_fields(self) -> tuple[tuple[str, str, str], ...]:
        """(keyword, key, VR) of the wanted attributes, as the core may name them in its index."""
        return tuple(
            (keyword, tag_key(tag), vr_of(tag))
            for tag in sorted(self.scope.wanted)
            if (keyword := keyword_of(tag))
        )

    def key(self, hit: Hit, base: str) -> tuple[str, Hashable] | None:
        """Where a result's dataset is kept, None if it is not. Made from the index (studies,
        series) or from the instance summaries (instances), it is the same for every search
        asking the same attributes until its resource changes: it is kept with its index entry
        (an instance's with its series), and dropped with it."""
        if self.scope.query.include_all or self.scope.query.sequence_matchers:
            return None
        if self.scope.level == INSTANCE:
            series = uri_of(SERIES, hit.resource["ParentSeries"])
            return series, ("answer", hit.orthanc_id, base, self.scope.wanted_keys)
        if self.scope.reads_tags:
            return None
        return uri_of(self.scope.level, hit.orthanc_id), ("answer", base, self.scope.wanted_keys)

    def dataset(self, hit: Hit, base: str, key: tuple[str, Hashable] | None) -> AnyDataset:
        """A new dataset for the result, kept (encoded: `answers`) under its answer key if it
        has one; the answer then takes the encoded one too, so that a search of many results
        holds ~1 kB per result rather than ~7 kB of Python objects until it is written."""
        dataset = self._new_dataset(hit, base)
        if key is None:
            return dataset
        return self.scope.entries.remember(key[0], EncodedDataset.of(dataset), key[1])

    def _new_dataset(self, hit: Hit, base: str) -> dicom_json.Dataset:
        chain = self.scope.entries.chain(hit.resource)
        attributes = dict(hit.read) if hit.read else {}
        if self.scope.query.include_all:
            attributes.update(dicom_json.from_main_dicom_tags(main_tags(chain)))
        else:  # the index wins where both have a value; a lower level wins over its parents
            for resource in chain:
                attributes.update(self._indexed_attributes(resource))
        attributes.update(self._computed(hit, chain, base))
        if self.scope.query.include_all:
            return dict(sorted(attributes.items()))
        return {key: attributes[key] for key in self.scope.wanted_keys if key in attributes}

    def _indexed_attributes(self, resource: dict[str, Any]) -> dicom_json.Dataset:
        """A resource's index entry as DICOM JSON: all its attributes for studies and series,
        converted once and cached (results and parents share them), the wanted ones for
        instances."""
        if resource["Type"] == INSTANCE:
            return _converted_main_tags(resource, self.indexed_fields)
        uri = uri_of(resource["Type"], resource["ID"])
        kept = self.scope.entries.cached(uri, "DICOM JSON")
        if kept is not None:
            return as_dataset(kept)
        fields = [_field(keyword) for keyword in main_tags([resource])]
        converted = _converted_main_tags(resource, [f for f in fields if f is not None])
        self.scope.entries.remember(uri, EncodedDataset.of(converted), "DICOM JSON")
        return converted

    def _computed(
        self, hit: Hit, chain: Sequence[dict[str, Any]], base: str
    ) -> dict[str, dict[str, Any]]:
        study, series = _uid(chain, STUDY), _uid(chain, SERIES)
        values: dict[int, tuple[str, list[Any]]] = {}
        if self.scope.level == STUDY:
            values[RETRIEVE_URL] = ("UR", [study_url(base, study)])
            values.update(self._study_counts(hit))
        elif self.scope.level == SERIES:
            values[RETRIEVE_URL] = ("UR", [series_url(base, study, series)])
            count = len(hit.resource.get("Instances", ()))
            values[NUMBER_OF_SERIES_RELATED_INSTANCES] = ("IS", [count])
        else:
            sop = _uid(chain, INSTANCE)
            values[RETRIEVE_URL] = ("UR", [instance_url(base, study, series, sop)])
        computed = {tag_key(t): element(*v) for t, v in values.items()}
        return {**CONSTANT_ELEMENTS, **computed}

    def _study_counts(self, hit: Hit) -> dict[int, tuple[str, list[Any]]]:
        values: dict[int, tuple[str, list[Any]]] = {
            NUMBER_OF_STUDY_RELATED_SERIES: ("IS", [len(hit.resource.get("Series", ()))])
        }
        if not self.scope.wanted & FROM_SERIES_OF_STUDY:
            return values
        series = self.scope.entries.series_of(hit.resource)
        modalities = sorted({s["MainDicomTags"].get("Modality", "") for s in series} - {""})
        instances = [i for s in series for i in s.get("Instances", ())]
        values[MODALITIES_IN_STUDY] = ("CS", modalities)
        values[NUMBER_OF_STUDY_RELATED_INSTANCES] = ("IS", [len(instances)])
        if SOP_CLASSES_IN_STUDY in self.scope.wanted:
            values[SOP_CLASSES_IN_STUDY] = ("UI", sorted(set(self._sop_classes(instances))))
        return values

    def _sop_classes(self, instances: Iterable[str]) -> Iterator[str]:
        """Each instance's SOP class, from the core's metadata (cheap: no file is read)."""
        for instance in instances:
            sop_class = get_if_exists(
                self.scope.core, f"/instances/{instance}/metadata/SopClassUid"
            )
            if sop_class is not None:
                yield sop_class.decode("utf-8", errors="replace").strip()


def main_tags(chain: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The indexed attributes of resources, the later ones winning."""
    tags: dict[str, Any] = {}
    for resource in chain:
        tags.update(resource.get("PatientMainDicomTags", {}))
        tags.update(resource.get("MainDicomTags", {}))
    return tags


def _converted_main_tags(
    resource: dict[str, Any], fields: Iterable[tuple[str, str, str]]
) -> dicom_json.Dataset:
    """The given (keyword, key, VR) of a resource's index entry, as DICOM JSON."""
    tags = main_tags([resource])
    return {
        key: element_from_text(vr, text if isinstance(text, str) else str(text))
        for keyword, key, vr in fields
        if (text := tags.get(keyword)) is not None
    }


@lru_cache(maxsize=1024)
def _field(keyword: str) -> tuple[str, str, str] | None:
    """(keyword, key, VR) of an attribute the core names by keyword; None if unknown."""
    try:
        tag = parse_tag(keyword)
    except HttpError:
        return None
    return keyword, tag_key(tag), vr_of(tag)


def _uid(chain: Sequence[dict[str, Any]], level: str) -> str:
    """The UID of the chain's resource of that level ("" if the chain stops above it)."""
    index = LEVELS.index(level)
    return chain[index]["MainDicomTags"].get(UID_KEYWORDS[level], "") if index < len(chain) else ""
