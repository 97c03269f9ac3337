"""QIDO-RS (PS3.18 10.6): Search for Studies, Search for Series, Search for Instances.

Speed comes from the core's index. Results come with their indexed attributes from one core
call: a listing (`GET /studies?expand`, `/series/{id}/instances`...) when nothing but the path
is matched, as it costs half a `/tools/find`; else one `/tools/find` with `Expand`, where the
core evaluates the top-level matching keys and pages with `Since`/`Limit`. Parents and the
series of studies (for the computed study attributes) are read by `index.IndexEntries`, one by
one or listed all at once when they are most of the database. What the core does not index is
read from the results' instances by `reading.InstanceReads`, and each result's dataset is made
(or found kept from an earlier search) by `datasets.AnswerDatasets`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from typing import Any

from ...config import Configuration
from ...dicom.tags import keyword_of
from ...dicom.xml_model import to_native_xml
from ...errors import not_found
from ...http.negotiation import DICOM_XML, dicom_model_format
from ...http.urls import dicomweb_base
from ...http.web import MultipartResponse, Request, Response
from ...orthanc.core import Core, get_json, post_json
from ...orthanc.index_cache import IndexCache
from ...orthanc.resources import ResourcePath, find_orthanc_ids
from ...orthanc.tags import orthanc_key
from .answers import AnyDataset, as_dataset, encode_answer
from .attributes import (
    FROM_SERIES_OF_STUDY,
    INSTANCE,
    MODALITIES_IN_STUDY,
    PLURAL,
    SERIES,
    SERIES_INSTANCE_UID,
    STUDY,
    STUDY_INSTANCE_UID,
    indexed_down_to,
)
from .core_filter import CoreQuery, core_query
from .datasets import AnswerDatasets, main_tags
from .index import IndexEntries
from .matching import MAX_PAGE_NUMBER, Matcher, SearchQuery, parse_search, values_at
from .reading import InstanceReads
from .scope import Hit, SearchScope

log = logging.getLogger(__name__)


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
    def scope(self) -> SearchScope:
        return SearchScope(self.config, self.core, self.entries, self.level, self.query)

    @cached_property
    def reads(self) -> InstanceReads:
        return InstanceReads(self.scope)

    @cached_property
    def datasets(self) -> AnswerDatasets:
        return AnswerDatasets(self.scope)

    def run(self, base: str) -> list[AnyDataset]:
        self._warm = self.index.validate()
        hits = self._page()
        keys = [self.datasets.key(hit, base) for hit in hits]
        kept = [None if key is None else self.entries.cached(*key) for key in keys]
        # Parents and series are read for the datasets to make only: a search answered from
        # kept datasets touches no other entry (and the LRU order lets those go first).
        new = [hit for hit, answer in zip(hits, kept, strict=True) if answer is None]
        self.entries.load_parents([hit.resource for hit in new], self.level)
        if self.level == STUDY and self._needs_series_of_studies():
            self.entries.load_series_of_studies(hit.resource for hit in new)
        if self.scope.reads_tags:
            self.reads.read_all(new)
        return [
            self.datasets.dataset(hit, base, key) if answer is None else answer
            for hit, key, answer in zip(hits, keys, kept, strict=True)
        ]

    def _needs_series_of_studies(self) -> bool:
        return self.scope.reads_tags or bool(self.scope.wanted & FROM_SERIES_OF_STUDY)

    # --- Finding and paging -------------------------------------------------------------------

    def _page(self) -> list[Hit]:
        """The results of the page: found and paged by the core when its matching is exact,
        else the core's candidates are checked here (`core_filter`), then paged."""
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
        return list(islice(self.entries.children_of(self.parent, self.level), since, end))

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
        found = post_json(self.core, "/tools/find", request)
        return self.entries.expanded(self.level, found, self._ids_suffice)

    def _list_all(self, since: int, limit: int | None) -> list[dict[str, Any]]:
        uri = f"/{PLURAL[self.level]}" + ("" if self._ids_suffice else "?expand")
        if since or limit:  # the core wants both, and `limit=0` means none there
            uri += "&" if "?" in uri else "?"
            uri += f"since={since}&limit={limit or MAX_PAGE_NUMBER}"
        return self.entries.expanded(self.level, get_json(self.core, uri), self._ids_suffice)

    @cached_property
    def _ids_suffice(self) -> bool:
        """Whether the core need only name the results: their entries are likely in the index
        cache (expanding costs the core ~0.06 ms a result, half a `/tools/find` of them)."""
        return self._warm and self.level != INSTANCE

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
            tags = main_tags(self.entries.chain(hit.resource))
            text = tags.get(keyword_of(matcher.tag))
            return [] if text is None else str(text).split("\\")
        return values_at(self.reads.read(hit), matcher.path)

    @cached_property
    def _indexed_here(self) -> frozenset[int]:
        return indexed_down_to(self.level)

    def _load_for_checks(self, candidates: Sequence[Hit], matchers: Sequence[Matcher]) -> None:
        """Read at once what checking the candidates needs: their parents, the series of
        studies (ModalitiesInStudy, and the first instance of a study to read)."""
        if self.level != STUDY:
            self.entries.load_parents([hit.resource for hit in candidates], self.level)
        elif any(m.tag not in self._indexed_here for m in matchers):
            self.entries.load_series_of_studies(hit.resource for hit in candidates)
