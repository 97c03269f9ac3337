"""The attributes of a QIDO-RS result's instance that the core does not index, read the
cheapest way available for the page.

Instance-level answers need SOPClassUID, Rows, Columns, BitsAllocated...: they come from
per-series summaries (`summary`, one small read per series), built once from the series
metadata cache. Other attributes are read from each result's instance (its first one, for
studies and series), or from the series metadata cache when the page holds most of a series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

from ...dicom import json_model as dicom_json
from ...dicom.tags import tag_key
from ...dicom.values import BINARY_VRS
from ...orthanc.core import get_if_exists, loads
from ...orthanc.tags import creator_key, orthanc_context, orthanc_key
from ..metadata.cache import SeriesMetadataCache
from .attributes import INSTANCE, SERIES, SOP_INSTANCE_UID, SUMMARY, available_without_tags
from .scope import Hit, SearchScope
from .summary import InstanceSummaries


class InstanceReads:
    """Reads the wanted attributes of a search's results' instances."""

    def __init__(self, scope: SearchScope) -> None:
        self.scope = scope

    def read_all(self, hits: Sequence[Hit]) -> None:
        """The attributes of every result's instance, by the cheapest way available."""
        if self.scope.level == INSTANCE and self.scope.config.enable_metadata_cache:
            if self._summaries_suffice:
                self._read_from_summaries(hits)
            else:
                self._read_from_series_caches(hits)
        for hit in hits:
            self.read(hit)

    def read(self, hit: Hit) -> dicom_json.Dataset:
        """The attributes of the result's instance (its first one, for studies and series)."""
        if hit.read is None:
            instance = self._representative_instance(hit)
            # None for an instance deleted since it was found.
            tags = (
                get_if_exists(self.scope.core, f"/instances/{instance}/tags") if instance else None
            )
            hit.read = self._converted_tags(loads(tags) if tags else {})
        return hit.read

    def _converted_tags(self, tags: Mapping[str, Any]) -> dicom_json.Dataset:
        """The wanted attributes as DICOM JSON (converting only those: it is costly)."""
        context = orthanc_context(tags)
        if self.scope.query.include_all:
            return dicom_json.from_orthanc_tags(tags, context=context)
        return dicom_json.from_orthanc_tags(_subset(tags, self.scope.wanted), context=context)

    @cached_property
    def _summaries_suffice(self) -> bool:
        """Whether the instance summaries hold every attribute the answer needs."""
        needed = self.scope.wanted - available_without_tags(INSTANCE)
        return (
            not (self.scope.query.include_all or self.scope.query.sequence_matchers)
            and needed <= SUMMARY
        )

    @cached_property
    def _summaries(self) -> InstanceSummaries:
        return InstanceSummaries(self.scope.config, self.scope.core, SUMMARY)

    def _read_from_summaries(self, hits: Sequence[Hit]) -> None:
        """Take instances' attributes from their series' summary (one small read per series);
        read the missing ones, and store them in the summary for the next searches."""
        for series_id, members in _by_series(hits).items():
            summary = self._summaries.read(series_id)
            missing = []
            for hit in members:
                entry = summary.get(hit.orthanc_id)
                if entry is not None and entry.file_uuid == hit.file_uuid:
                    hit.read = entry.dataset
                else:
                    missing.append(hit)
            if missing:
                self._read_from_series_cache(series_id, missing)
                for hit in missing:
                    summary[hit.orthanc_id] = self._summaries.entry(hit.file_uuid, self.read(hit))
                self._summaries.write(series_id, summary)

    def _read_from_series_caches(self, hits: Sequence[Hit]) -> None:
        for series_id, members in _by_series(hits).items():
            self._read_from_series_cache(series_id, members)

    def _read_from_series_cache(self, series_id: str, hits: Sequence[Hit]) -> None:
        """Take instances' attributes from their series' metadata (one read for the series)
        where they are more than half of the series: cheaper than reading each one."""
        instances = self.scope.entries.parent_of(hits[0].resource)["Instances"]
        if 2 * len(hits) <= len(instances):
            return
        metadata = loads(self._series_cache.series_json(series_id))
        by_uid = {_first_value(dataset, SOP_INSTANCE_UID): dataset for dataset in metadata}
        for hit in hits:
            dataset = by_uid.get(hit.resource["MainDicomTags"].get("SOPInstanceUID"))
            if dataset is not None:
                hit.read = self._selected(dataset)

    def _selected(self, dataset: dicom_json.Dataset) -> dicom_json.Dataset:
        """The wanted attributes of a full dataset (every one but bulk data, for "all")."""
        if self.scope.query.include_all:
            return _without_bulk_data(dataset)
        return {key: dataset[key] for key in self.scope.wanted_keys if key in dataset}

    @cached_property
    def _series_cache(self) -> SeriesMetadataCache:
        return SeriesMetadataCache(self.scope.config, self.scope.core)

    def _representative_instance(self, hit: Hit) -> str | None:
        """The instance whose tags stand for the result (its first one, for studies/series)."""
        if self.scope.level == INSTANCE:
            return hit.orthanc_id
        if self.scope.level == SERIES:
            return next(iter(hit.resource.get("Instances", ())), None)
        series = self.scope.entries.series_of(hit.resource)
        return next((i for s in series for i in s.get("Instances", ())), None)


def _by_series(hits: Iterable[Hit]) -> dict[str, list[Hit]]:
    by_series: dict[str, list[Hit]] = {}
    for hit in hits:
        by_series.setdefault(hit.resource["ParentSeries"], []).append(hit)
    return by_series


def _first_value(dataset: Mapping[str, Any], tag: int) -> Any:
    values = dataset.get(tag_key(tag), {}).get("Value") or [None]
    return values[0]


def _without_bulk_data(dataset: Mapping[str, Any]) -> dicom_json.Dataset:
    """A search answers no binary values (the series metadata has them by BulkDataURI)."""
    return {
        key: attribute
        for key, attribute in dataset.items()
        if attribute.get("vr") not in BINARY_VRS
        and "BulkDataURI" not in attribute
        and "InlineBinary" not in attribute
    }


def _subset(tags: Mapping[str, Any], wanted: Iterable[int]) -> dict[str, Any]:
    """The wanted entries of a dataset in the core's format, with their private creators."""
    keys = {orthanc_key(tag) for tag in wanted}
    keys |= {key for tag in wanted if (key := creator_key(tag)) is not None}
    return {key: tags[key] for key in keys if key in tags}
