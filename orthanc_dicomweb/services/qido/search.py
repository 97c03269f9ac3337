"""QIDO-RS (PS3.18 10.6): Search for Studies, Search for Series, Search for Instances.

Speed comes from the core's index. Results come with their indexed attributes from one core
call: a listing (`GET /studies?expand`, `/series/{id}/instances`...) when nothing but the path
is matched, as it costs half a `/tools/find`; else one `/tools/find` with `Expand`, where the
core evaluates the top-level matching keys and pages with `Since`/`Limit`. Parents and the
series of studies (for the computed study attributes) are read one by one, or listed all at
once when they are most of the database. Instance-level answers need attributes the core does
not index (SOPClassUID, Rows, Columns, BitsAllocated): they come from per-series summaries
(`qido_summary`, one small read per series), built once from the series metadata cache.
Other non-indexed attributes are read from each result's instance, or from the series
metadata cache when the page holds most of a series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import islice
from typing import Any

from ...config import Configuration
from ...dicom import json_model as dicom_json
from ...dicom.tags import keyword_of, parse_tag, tag_key, vr_of
from ...dicom.values import BINARY_VRS, element, element_from_text
from ...dicom.xml_model import to_native_xml
from ...errors import HttpError, not_found
from ...http.negotiation import DICOM_XML, dicom_model_format
from ...http.urls import dicomweb_base, instance_url, series_url, study_url
from ...http.web import MultipartResponse, Request, Response
from ...orthanc.core import Core, get_if_exists, get_json, loads, post_json
from ...orthanc.index_cache import IndexCache
from ...orthanc.resources import ResourcePath, find_orthanc_ids
from ...orthanc.tags import creator_key, orthanc_context, orthanc_key
from ..metadata.cache import SeriesMetadataCache
from .answers import AnyDataset, EncodedDataset, as_dataset, encode_answer
from .attributes import (
    COMPUTED,
    CONSTANT_ELEMENTS,
    INDEXED,
    INSTANCE,
    LEVELS,
    MODALITIES_IN_STUDY,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    PLURAL,
    RETRIEVE_URL,
    SERIES,
    SERIES_INSTANCE_UID,
    SOP_CLASSES_IN_STUDY,
    SOP_INSTANCE_UID,
    STUDY,
    STUDY_INSTANCE_UID,
    SUMMARY,
    available_without_tags,
    default_tags,
    levels_down_to,
)
from .core_filter import CoreQuery, core_query
from .index import IndexEntries, uri_of
from .matching import MAX_PAGE_NUMBER, Matcher, SearchQuery, parse_search, values_at
from .summary import InstanceSummaries

log = logging.getLogger(__name__)


@dataclass
class Hit:
    """One result: the core's expanded resource, and its instance's attributes once read."""

    resource: dict[str, Any]
    read: dicom_json.Dataset | None = None

    @property
    def orthanc_id(self) -> str:
        return self.resource["ID"]

    @property
    def file_uuid(self) -> str:
        """The stored file of an instance: the core gives it a new one when it is stored again."""
        return self.resource.get("FileUuid", "")


class SearchService:
    """QIDO-RS: Search for Studies, Series and Instances (all the routes of PS3.18 10.6)."""

    def __init__(self, config: Configuration, core: Core, index: IndexCache | None = None) -> None:
        self.config = config
        self.core = core
        self.index = index or IndexCache(core, capacity=0)

    def search_for_studies(self, request: Request) -> Response | MultipartResponse:
        return self._search(request, STUDY)

    def search_for_series(self, request: Request) -> Response | MultipartResponse:
        return self._search(request, SERIES)

    def search_for_instances(self, request: Request) -> Response | MultipartResponse:
        return self._search(request, INSTANCE)

    def _search(self, request: Request, level: str) -> Response | MultipartResponse:
        started = time.perf_counter()
        render = answer_renderer(request.header("accept"))
        parent = ResourcePath.from_groups(request.groups) if request.groups else None
        query = parse_search(request.query)
        search = Search(self.config, self.core, self.index, level, parent, query)
        datasets = search.run(dicomweb_base(self.config, request))
        if not datasets and parent is not None and not find_orthanc_ids(self.core, parent):
            raise not_found(f"No such resource in Orthanc: {parent.describe()}")
        answer = render(datasets)
        if self.config.enable_performance_logs:
            elapsed = (time.perf_counter() - started) * 1000
            log.info("QIDO-RS %s: %d results in %.1f ms", request.path, len(datasets), elapsed)
        return answer


def answer_renderer(
    accept: str | None,
) -> Callable[[list[AnyDataset]], Response | MultipartResponse]:
    """Negotiate the answer's format (DICOM JSON, or the XML model as multipart); 406 if none."""
    chosen = dicom_model_format(accept, "A search")
    if chosen == DICOM_XML:
        return lambda datasets: MultipartResponse(
            DICOM_XML, (to_native_xml(as_dataset(dataset)) for dataset in datasets)
        )
    return lambda datasets: Response(encode_answer(datasets), chosen)


@dataclass
class Search:
    """One search: its core calls and the datasets of the answer (state lives one request)."""

    config: Configuration
    core: Core
    index: IndexCache
    level: str
    parent: ResourcePath | None
    query: SearchQuery
    _warm: bool = False

    @cached_property
    def entries(self) -> IndexEntries:
        return IndexEntries(self.core, self.index)

    @cached_property
    def wanted(self) -> frozenset[int]:
        return default_tags(self.level, self.query.matched_tags) | self.query.returned_tags

    @cached_property
    def wanted_keys(self) -> tuple[str, ...]:
        """The wanted attributes' keys, in the order of the answer."""
        return tuple(tag_key(tag) for tag in sorted(self.wanted))

    @cached_property
    def indexed_fields(self) -> tuple[tuple[str, str, str], ...]:
        """(keyword, key, VR) of the wanted attributes, as the core may name them in its index."""
        return tuple(
            (keyword, tag_key(tag), vr_of(tag))
            for tag in sorted(self.wanted)
            if (keyword := keyword_of(tag))
        )

    @cached_property
    def reads_tags(self) -> bool:
        """Whether every result needs its instance's tags (else only sequence matching does)."""
        return (
            self.level == INSTANCE
            or self.query.include_all
            or bool(self.query.returned_tags - available_without_tags(self.level))
        )

    def run(self, base: str) -> list[AnyDataset]:
        self._warm = self.index.validate()
        hits = self._page()
        keys = [self._answer_key(hit, base) for hit in hits]
        kept = [None if key is None else self.entries.cached(*key) for key in keys]
        # Parents and series are read for the datasets to make only: a search answered from
        # kept datasets touches no other entry (and the LRU order lets those go first).
        new = [hit for hit, answer in zip(hits, kept, strict=True) if answer is None]
        self.entries.load_parents([hit.resource for hit in new], self.level)
        if self.level == STUDY and self._needs_series_of_studies():
            self.entries.load_series_of_studies(hit.resource for hit in new)
        if self.reads_tags:
            self._read_all(new)
        return [
            self._dataset(hit, base, key) if answer is None else answer
            for hit, key, answer in zip(hits, keys, kept, strict=True)
        ]

    # --- Finding and paging -------------------------------------------------------------------

    def _page(self) -> list[Hit]:
        """The results of the page: found and paged by the core when its matching is exact,
        else the core's candidates are checked here (`qido_core`), then paged."""
        if self._core_query is None:
            return []
        checked = self.query.sequence_matchers + self._core_query.inexact
        if not checked:
            return [Hit(r) for r in self._find(self.query.offset, self.query.limit)]
        candidates = [Hit(r) for r in self._find(0, None)]
        self._load_for_checks(candidates, checked)
        selected = (hit for hit in candidates if self._matches(hit, checked))
        end = None if self.query.limit is None else self.query.offset + self.query.limit
        return list(islice(selected, self.query.offset, end))

    def _find(self, since: int, limit: int | None) -> list[dict[str, Any]]:
        """The expanded results: the core's listings when nothing is matched (they cost half a
        `/tools/find` of the same resources, measured), else `/tools/find`."""
        assert self._core_query is not None
        if self._core_query.constraints:
            constraints = self._path_constraints() | self._core_query.constraints
            query = {orthanc_key(tag): value for tag, value in constraints.items()}
            return self._tools_find(query, since, limit)
        if self.parent is None:
            return self._list_all(since, limit)
        end = None if limit is None else since + limit
        return list(islice(self._list_children(), since, end))

    def _tools_find(
        self, constraints: dict[str, str], since: int, limit: int | None
    ) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "Level": self.level,
            "Query": constraints,
            "Expand": not self._ids_suffice,
            "CaseSensitive": self._core_query is not None and self._core_query.case_sensitive,
        }
        if since:
            request["Since"] = since
        if limit:
            request["Limit"] = limit
        return self._resources_of(post_json(self.core, "/tools/find", request))

    def _list_all(self, since: int, limit: int | None) -> list[dict[str, Any]]:
        uri = f"/{PLURAL[self.level]}" + ("" if self._ids_suffice else "?expand")
        if since or limit:  # the core wants both, and `limit=0` means none there
            uri += "&" if "?" in uri else "?"
            uri += f"since={since}&limit={limit or MAX_PAGE_NUMBER}"
        return self._resources_of(get_json(self.core, uri))

    @cached_property
    def _ids_suffice(self) -> bool:
        """Whether the core need only name the results: their entries are likely in the index
        cache (expanding costs the core ~0.06 ms a result, half a `/tools/find` of them)."""
        return self._warm and self.level != INSTANCE

    def _resources_of(self, found: list[Any]) -> list[dict[str, Any]]:
        """The expanded results of the core's answer (ids, or expanded resources)."""
        if not self._ids_suffice:
            if self.level != INSTANCE:
                for resource in found:
                    self.entries.remember(uri_of(self.level, resource["ID"]), resource)
            return found
        uris = [uri_of(self.level, orthanc_id) for orthanc_id in found]
        missing = [uri for uri in uris if self.entries.cached(uri) is None]
        self.entries.read_missing(self.level, missing)
        return [resource for uri in uris if (resource := self.entries.resource(uri)) is not None]

    def _list_children(self) -> Iterator[dict[str, Any]]:
        """The results below the path's study or series (several if its UIDs are repeated)."""
        assert self.parent is not None
        parent_level = self.parent.level
        for parent_id in find_orthanc_ids(self.core, self.parent):
            uri = f"{uri_of(parent_level, parent_id)}/{PLURAL[self.level]}"
            yield from self.entries.children(uri)

    @cached_property
    def _core_query(self) -> CoreQuery | None:
        """The core's part of the matching; None when a key matches nothing (a reversed
        range) or contradicts the path."""
        fixed = self._path_constraints()
        matchers = self.query.core_matchers
        if not all(m.can_match for m in matchers):
            return None
        if not all(m.matches([fixed[m.tag]], True) for m in matchers if m.tag in fixed):
            return None
        others = [m for m in matchers if m.tag not in fixed]
        return core_query(others, self.config.qido_case_sensitive)

    def _path_constraints(self) -> dict[int, str]:
        if self.parent is None:
            return {}
        fixed = {STUDY_INSTANCE_UID: self.parent.study}
        if self.parent.series:
            fixed[SERIES_INSTANCE_UID] = self.parent.series
        return fixed

    def _matches(self, hit: Hit, matchers: Sequence[Matcher]) -> bool:
        case_sensitive = self.config.qido_case_sensitive
        return all(m.matches(self._values(hit, m), case_sensitive) for m in matchers)

    def _values(self, hit: Hit, matcher: Matcher) -> list[str]:
        """The values a key is checked against: from the index entries where they are."""
        if matcher.tag == MODALITIES_IN_STUDY and self.level == STUDY:
            series = self.entries.series_of(hit.resource)
            return [s["MainDicomTags"].get("Modality", "") for s in series]
        if not matcher.in_sequence and matcher.tag in self._indexed_here:
            tags = _main_tags(self.entries.chain(hit.resource))
            text = tags.get(keyword_of(matcher.tag))
            return [] if text is None else str(text).split("\\")
        return values_at(self._read(hit), matcher.path)

    @cached_property
    def _indexed_here(self) -> frozenset[int]:
        return frozenset().union(*(INDEXED[level] for level in levels_down_to(self.level)))

    def _load_for_checks(self, candidates: Sequence[Hit], matchers: Sequence[Matcher]) -> None:
        """Read at once what checking the candidates needs: their parents, the series of
        studies (ModalitiesInStudy, and the first instance of a study to read)."""
        if self.level != STUDY:
            self.entries.load_parents([hit.resource for hit in candidates], self.level)
        elif any(m.tag not in self._indexed_here for m in matchers):
            self.entries.load_series_of_studies(hit.resource for hit in candidates)

    # --- Instances' attributes ----------------------------------------------------------------

    def _read_all(self, hits: Sequence[Hit]) -> None:
        """The attributes of every result's instance, by the cheapest way available."""
        if self.level == INSTANCE and self.config.enable_metadata_cache:
            if self._summaries_suffice:
                self._read_from_summaries(hits)
            else:
                self._read_from_series_caches(hits)
        for hit in hits:
            self._read(hit)

    def _read(self, hit: Hit) -> dicom_json.Dataset:
        """The attributes of the result's instance (its first one, for studies and series)."""
        if hit.read is None:
            instance = self._representative_instance(hit)
            # None for an instance deleted since it was found.
            tags = get_if_exists(self.core, f"/instances/{instance}/tags") if instance else None
            hit.read = self._converted_tags(loads(tags) if tags else {})
        return hit.read

    def _converted_tags(self, tags: Mapping[str, Any]) -> dicom_json.Dataset:
        """The wanted attributes as DICOM JSON (converting only those: it is costly)."""
        context = orthanc_context(tags)
        if self.query.include_all:
            return dicom_json.from_orthanc_tags(tags, context=context)
        return dicom_json.from_orthanc_tags(_subset(tags, self.wanted), context=context)

    @cached_property
    def _summaries_suffice(self) -> bool:
        """Whether the instance summaries hold every attribute the answer needs."""
        needed = self.wanted - available_without_tags(INSTANCE)
        return not (self.query.include_all or self.query.sequence_matchers) and needed <= SUMMARY

    @cached_property
    def _summaries(self) -> InstanceSummaries:
        return InstanceSummaries(self.config, self.core, SUMMARY)

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
                    summary[hit.orthanc_id] = self._summaries.entry(hit.file_uuid, self._read(hit))
                self._summaries.write(series_id, summary)

    def _read_from_series_caches(self, hits: Sequence[Hit]) -> None:
        for series_id, members in _by_series(hits).items():
            self._read_from_series_cache(series_id, members)

    def _read_from_series_cache(self, series_id: str, hits: Sequence[Hit]) -> None:
        """Take instances' attributes from their series' metadata (one read for the series)
        where they are more than half of the series: cheaper than reading each one."""
        instances = self.entries.parent_of(hits[0].resource)["Instances"]
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
        if self.query.include_all:
            return _without_bulk_data(dataset)
        return {key: dataset[key] for key in self.wanted_keys if key in dataset}

    @cached_property
    def _series_cache(self) -> SeriesMetadataCache:
        return SeriesMetadataCache(self.config, self.core)

    def _representative_instance(self, hit: Hit) -> str | None:
        """The instance whose tags stand for the result (its first one, for studies/series)."""
        if self.level == INSTANCE:
            return hit.orthanc_id
        if self.level == SERIES:
            return next(iter(hit.resource.get("Instances", ())), None)
        series = self.entries.series_of(hit.resource)
        return next((i for s in series for i in s.get("Instances", ())), None)

    def _needs_series_of_studies(self) -> bool:
        computed = COMPUTED[STUDY] - {NUMBER_OF_STUDY_RELATED_SERIES}
        return self.reads_tags or bool(self.wanted & computed)

    # --- Datasets -----------------------------------------------------------------------------

    def _answer_key(self, hit: Hit, base: str) -> tuple[str, Hashable] | None:
        """Where a result's dataset is kept, None if it is not. Made from the index (studies,
        series) or from the instance summaries (instances), it is the same for every search
        asking the same attributes until its resource changes: it is kept with its index entry
        (an instance's with its series), and dropped with it."""
        if self.query.include_all or self.query.sequence_matchers:
            return None
        if self.level == INSTANCE:
            series = uri_of(SERIES, hit.resource["ParentSeries"])
            return series, ("answer", hit.orthanc_id, base, self.wanted_keys)
        if self.reads_tags:
            return None
        return uri_of(self.level, hit.orthanc_id), ("answer", base, self.wanted_keys)

    def _dataset(self, hit: Hit, base: str, key: tuple[str, Hashable] | None) -> AnyDataset:
        """A new dataset for the result, kept (encoded: `qido_answers`) under its answer key if
        it has one; the answer then takes the encoded one too, so that a search of many results
        holds ~1 kB per result rather than ~7 kB of Python objects until it is written."""
        dataset = self._new_dataset(hit, base)
        if key is None:
            return dataset
        return self.entries.remember(key[0], EncodedDataset.of(dataset), key[1])

    def _new_dataset(self, hit: Hit, base: str) -> dicom_json.Dataset:
        chain = self.entries.chain(hit.resource)
        attributes = dict(hit.read) if hit.read else {}
        if self.query.include_all:
            attributes.update(dicom_json.from_main_dicom_tags(_main_tags(chain)))
        else:  # the index wins where both have a value; a lower level wins over its parents
            for resource in chain:
                attributes.update(self._indexed_attributes(resource))
        attributes.update(self._computed(hit, chain, base))
        if self.query.include_all:
            return dict(sorted(attributes.items()))
        return {key: attributes[key] for key in self.wanted_keys if key in attributes}

    def _indexed_attributes(self, resource: dict[str, Any]) -> dicom_json.Dataset:
        """A resource's index entry as DICOM JSON: all its attributes for studies and series,
        converted once and cached (results and parents share them), the wanted ones for
        instances."""
        if resource["Type"] == INSTANCE:
            return _converted_main_tags(resource, self.indexed_fields)
        uri = uri_of(resource["Type"], resource["ID"])
        kept = self.entries.cached(uri, "DICOM JSON")
        if kept is not None:
            return as_dataset(kept)
        fields = [_field(keyword) for keyword in _main_tags([resource])]
        converted = _converted_main_tags(resource, [f for f in fields if f is not None])
        self.entries.remember(uri, EncodedDataset.of(converted), "DICOM JSON")
        return converted

    def _computed(
        self, hit: Hit, chain: Sequence[dict[str, Any]], base: str
    ) -> dict[str, dict[str, Any]]:
        study, series = _uid(chain, STUDY), _uid(chain, SERIES)
        values: dict[int, tuple[str, list[Any]]] = {}
        if self.level == STUDY:
            values[RETRIEVE_URL] = ("UR", [study_url(base, study)])
            values.update(self._study_counts(hit))
        elif self.level == SERIES:
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
        if not self.wanted & (COMPUTED[STUDY] - {NUMBER_OF_STUDY_RELATED_SERIES}):
            return values
        series = self.entries.series_of(hit.resource)
        modalities = sorted({s["MainDicomTags"].get("Modality", "") for s in series} - {""})
        instances = [i for s in series for i in s.get("Instances", ())]
        values[MODALITIES_IN_STUDY] = ("CS", modalities)
        values[NUMBER_OF_STUDY_RELATED_INSTANCES] = ("IS", [len(instances)])
        if SOP_CLASSES_IN_STUDY in self.wanted:
            values[SOP_CLASSES_IN_STUDY] = ("UI", sorted(set(self._sop_classes(instances))))
        return values

    def _sop_classes(self, instances: Iterable[str]) -> Iterator[str]:
        """Each instance's SOP class, from the core's metadata (cheap: no file is read)."""
        for instance in instances:
            sop_class = get_if_exists(self.core, f"/instances/{instance}/metadata/SopClassUid")
            if sop_class is not None:
                yield sop_class.decode("utf-8", errors="replace").strip()


def _converted_main_tags(
    resource: dict[str, Any], fields: Iterable[tuple[str, str, str]]
) -> dicom_json.Dataset:
    """The given (keyword, key, VR) of a resource's index entry, as DICOM JSON."""
    tags = _main_tags([resource])
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


def _main_tags(chain: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The indexed attributes of resources, the later ones winning."""
    tags: dict[str, Any] = {}
    for resource in chain:
        tags.update(resource.get("PatientMainDicomTags", {}))
        tags.update(resource.get("MainDicomTags", {}))
    return tags


UID_KEYWORDS = {STUDY: "StudyInstanceUID", SERIES: "SeriesInstanceUID", INSTANCE: "SOPInstanceUID"}


def _uid(chain: Sequence[dict[str, Any]], level: str) -> str:
    """The UID of the chain's resource of that level ("" if the chain stops above it)."""
    index = LEVELS.index(level)
    return chain[index]["MainDicomTags"].get(UID_KEYWORDS[level], "") if index < len(chain) else ""


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
