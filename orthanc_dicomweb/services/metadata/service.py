"""WADO-RS Retrieve Metadata (PS3.18 10.4.1.1.2): study, series and instance metadata.

Answers are the DICOM JSON model (default) or a multipart of `application/dicom+xml`.
`StudiesMetadata` / `SeriesMetadata` choose how study / series answers are made:
`Full` (every instance's tags, through the series metadata cache), `MainDicomTags` (the
core's index only, no file read) or `Extrapolate` (main tags, plus the configured tags taken
from up to three instances when most of them agree). Instance metadata is always `Full`, read
from the dataset the cache keeps with the instance when there, else computed from its tags.
`Full` JSON answers of series and studies are kept ready to send (see `metadata_cache`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...config import Configuration
from ...dicom import json_model as dicom_json
from ...dicom import tags as dicom_tags
from ...dicom import xml_model as dicom_xml
from ...errors import HttpError, not_found
from ...http import negotiation
from ...http.urls import dicomweb_base
from ...http.web import Answer, MultipartResponse, Request, Response
from ...orthanc.core import Core, loads, post_json
from ...orthanc.request_scope import found_resources, located_resource
from ...orthanc.resources import ResourcePath, is_orthanc_id, lookup_ids, only_one
from ...orthanc.stored_instances import InstanceReader
from .cache import (
    InstanceMetadata,
    PreparedAnswers,
    SeriesList,
    SeriesMetadataCache,
    absolute_bulk_data_uris,
    answer_key,
    join_json_arrays,
    resource_uids,
)

log = logging.getLogger(__name__)

JSON_TYPE = "application/dicom+json"
XML_TYPE = "application/dicom+xml"
_EXTRAPOLATION_SAMPLES = 3


def wants_xml(accept: str | None) -> bool:
    """Whether the Accept header asks for XML (multipart of dicom+xml) rather than JSON."""
    return negotiation.metadata_format(accept) == negotiation.DICOM_XML


def extrapolated_tags(names: Iterable[str], option: str) -> tuple[int, ...]:
    """The tags of a `*ExtrapolatedTags` option; unknown names are logged and ignored."""
    tags = []
    for name in names:
        try:
            tags.append(dicom_tags.parse_tag(name))
        except HttpError:
            log.warning("%s: unknown attribute %r ignored", option, name)
    return tuple(tags)


def majority_elements(
    datasets: Sequence[Mapping[str, Any]], tags: Iterable[int]
) -> dict[str, dict[str, Any]]:
    """For each tag, the attribute that more than half of the datasets hold identically."""
    agreed: dict[str, dict[str, Any]] = {}
    for tag in tags:
        key = dicom_tags.tag_key(tag)
        votes = Counter(
            dicom_json.encode_json(dataset[key]) for dataset in datasets if key in dataset
        )
        if votes:
            encoded, count = votes.most_common(1)[0]
            if 2 * count > len(datasets):
                agreed[key] = json.loads(encoded)
    return agreed


def evenly_spread(items: Sequence[str], count: int) -> list[str]:
    """Up to `count` items, first and last included (the same ones at every call)."""
    if len(items) <= count:
        return list(items)
    step = (len(items) - 1) / (count - 1)
    return [items[round(index * step)] for index in range(count)]


class RetrieveMetadata:
    """The WADO-RS metadata service: Retrieve Study / Series / Instance Metadata."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.core = core
        self.cache = SeriesMetadataCache(config, core)
        self.answers = PreparedAnswers(config, core)
        self.instances = InstanceMetadata(config, core)
        self.stored = InstanceReader(core)
        self.study_tags = extrapolated_tags(
            config.studies_metadata_extrapolated_tags, "StudiesMetadataExtrapolatedTags"
        )
        self.series_tags = extrapolated_tags(
            config.series_metadata_extrapolated_tags, "SeriesMetadataExtrapolatedTags"
        )

    # --- Handlers ---------------------------------------------------------------------------

    def study_metadata(self, request: Request) -> Answer:
        """Retrieve Study Metadata."""
        xml = wants_xml(request.header("accept"))
        path = ResourcePath.from_groups(request.groups[:1])
        if self.config.studies_metadata != "Full":
            body = self._indexed_metadata(path, self.config.studies_metadata, self.study_tags)
            return self._answer(request, body, xml)
        # The study's series with their instance ids: one index call for the whole study,
        # which the ETag made already (`http.caching`), as it listed the members.
        found = found_resources(self.core, path, "Series")
        study_id = only_one([series["ParentStudy"] for series in found], path)
        series = [(s["ID"], self.cache.series_members(s["ID"], s["Instances"])) for s in found]
        return self._full_answer(request, f"/studies/{study_id}", series, xml)

    def series_metadata(self, request: Request) -> Answer:
        """Retrieve Series Metadata."""
        xml = wants_xml(request.header("accept"))
        path = ResourcePath.from_groups(request.groups[:2])
        if self.config.series_metadata != "Full":
            body = self._indexed_metadata(path, self.config.series_metadata, self.series_tags)
            return self._answer(request, body, xml)
        found = located_resource(self.core, path)  # as for the ETag, with the members
        series = [(found["ID"], self.cache.series_members(found["ID"], found["Instances"]))]
        return self._full_answer(request, f"/series/{found['ID']}", series, xml)

    def instance_metadata(self, request: Request) -> Answer:
        """Retrieve Instance Metadata (always Full)."""
        xml = wants_xml(request.header("accept"))
        path = ResourcePath.from_groups(request.groups[:3])
        dataset = self._cached_instance(path) or self._computed_instance(path)
        return self._answer(request, b"[" + dataset + b"]", xml)

    def _cached_instance(self, path: ResourcePath) -> bytes | None:
        """The instance's dataset as kept with it by the metadata cache, when there.

        The instance is found by its UID alone, the cheapest lookup (the SDK's, where the core
        offers it): the dataset's own UIDs then tell whether it is the one the path names.
        """
        if not self.config.enable_metadata_cache:
            return None
        instance_id = self.stored.lookup(path.instance or "")
        dataset = None if instance_id is None else self.cache.instance_json(instance_id)
        return dataset if dataset is not None and _names(dataset, path) else None

    def _computed_instance(self, path: ResourcePath) -> bytes:
        """The dataset of the instance with this UID whose parents are the path's, from the
        core's tags (several instances may share a SOP Instance UID in Orthanc)."""
        for instance_id in lookup_ids(self.core, path.instance or "", "Instance"):
            tags = self.instances.tags(instance_id)
            if resource_uids(tags) == (path.study, path.series, path.instance):
                dataset = self.instances.dataset_from_tags(instance_id, tags)
                encoded = dicom_json.encode_json(dataset)
                self.cache.keep_instance(instance_id, encoded)
                return encoded
        raise not_found(f"No such resource in Orthanc: {path.describe()}")

    # --- MainDicomTags and Extrapolate ------------------------------------------------------

    def _indexed_metadata(self, path: ResourcePath, mode: str, tags: Sequence[int]) -> bytes:
        """Datasets of the core's main tags (patient to instance), plus extrapolated tags."""
        query = {"StudyInstanceUID": path.study}
        if path.series:
            query["SeriesInstanceUID"] = path.series
        instances = self._find("Instance", query)
        series = {found["ID"]: found["MainDicomTags"] for found in self._find("Series", query)}
        studies = self._find("Study", {"StudyInstanceUID": path.study})
        if not instances or not studies:  # deleted since it was located
            raise not_found(f"No such resource in Orthanc: {path.describe()}")
        common = {**studies[0].get("PatientMainDicomTags", {}), **studies[0]["MainDicomTags"]}
        extrapolated = mode == "Extrapolate"
        extra = self._extrapolate([i["ID"] for i in instances], tags) if extrapolated else {}
        datasets = []
        for instance in instances:
            merged = {**common, **series.get(instance["ParentSeries"], {})}
            merged.update(instance["MainDicomTags"])
            dataset = {**dicom_json.from_main_dicom_tags(merged), **extra}
            datasets.append(dict(sorted(dataset.items())))
        return dicom_json.encode_datasets(datasets)

    def _find(self, level: str, query: Mapping[str, str]) -> list[dict[str, Any]]:
        return post_json(
            self.core, "/tools/find", {"Level": level, "Query": dict(query), "Expand": True}
        )

    def _extrapolate(self, instance_ids: Sequence[str], tags: Sequence[int]) -> dict[str, Any]:
        if not tags or not instance_ids:
            return {}
        samples = [
            self.instances.dataset(i)
            for i in evenly_spread(sorted(instance_ids), _EXTRAPOLATION_SAMPLES)
        ]
        return majority_elements(samples, tags)

    # --- Answers ----------------------------------------------------------------------------

    def _full_answer(
        self, request: Request, resource: str, series: SeriesList, xml: bool
    ) -> Answer:
        """The metadata of these series, from the resource's prepared answer when up to date."""
        if xml:
            return self._answer(request, self._series_json(series), xml)
        base = dicomweb_base(self.config, request)
        key = answer_key(self.config, series)
        body = self.answers.read(resource, key, base)
        if body is None:
            body = absolute_bulk_data_uris(self._series_json(series), base)
            self.answers.write(resource, key, base, body)
        return Response(body, JSON_TYPE)

    def _series_json(self, series: SeriesList) -> bytes:
        return join_json_arrays(self.cache.series_json(s, members) for s, members in series)

    def _answer(self, request: Request, relative_json: bytes, xml: bool) -> Answer:
        body = absolute_bulk_data_uris(relative_json, dicomweb_base(self.config, request))
        if not xml:
            return Response(body, JSON_TYPE)
        datasets = loads(body)
        return MultipartResponse(XML_TYPE, (dicom_xml.to_native_xml(d) for d in datasets))


class MetadataCacheUpdate:
    """`POST /studies/{orthanc id}/update-dicomweb-cache`: rebuild a study's metadata cache."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.cache = SeriesMetadataCache(config, core)

    def update_study(self, request: Request) -> Answer:
        study_id = request.groups[0]
        if not is_orthanc_id(study_id):
            raise HttpError(400, f"Malformed Orthanc study id: {study_id!r}")
        if not self.config.enable_metadata_cache:
            raise HttpError(409, "The metadata cache is disabled (DicomWeb.EnableMetadataCache)")
        if self.config.read_only:
            raise HttpError(403, "Orthanc is read-only: the metadata cache cannot be written")
        series = self.cache.rebuild_study(study_id)
        return Response(json.dumps({"Study": study_id, "Series": series}), "application/json")


def _names(dataset: bytes, path: ResourcePath) -> bool:
    """Whether a compact JSON dataset has the study, series and SOP instance UIDs of the path
    (UIDs hold only digits and dots: their JSON is the UID itself)."""
    uids = (("0020000D", path.study), ("0020000E", path.series), ("00080018", path.instance))
    return all(f'"{tag}":{{"vr":"UI","Value":["{uid}"]}}'.encode() in dataset for tag, uid in uids)
