"""The index entries one QIDO-RS search reads: expanded studies and series (and what is derived
from them), from this request's memo, then the index cache kept between searches, then the core
in as few calls as the counts allow (one by one, or a whole level listed at once)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ...errors import not_found
from ...orthanc.core import Core, get_if_exists, get_json, loads
from ...orthanc.index_cache import RESOURCE, IndexCache
from ...orthanc.request_scope import found_resources
from ...orthanc.resources import ResourcePath
from .attributes import INSTANCE, PLURAL, SERIES, STUDY, levels_down_to

STATISTICS_COUNT = {STUDY: "CountStudies", SERIES: "CountSeries", INSTANCE: "CountInstances"}
# Below this many resources, reading them one by one is cheap enough whatever the database.
BULK_MINIMUM = 50
# A whole level is listed in pages of this many: the core builds each answer whole before
# sending it. At 50,000 studies, "all studies" peaked 60-100 MB lower (VmHWM 470 against
# 540-570 MB) and took 4 % less time than with one listing per level.
LISTING_PAGE = 5_000


def uri_of(level: str, orthanc_id: str) -> str:
    """The core's URI of a resource, which also keys its index entry."""
    return f"/{PLURAL[level]}/{orthanc_id}"


@dataclass
class IndexEntries:
    """The entries of one search (state lives one request; the index cache outlives it)."""

    core: Core
    index: IndexCache
    # What this request read or converted, by key: kept even if the index cache drops it.
    _memo: dict[tuple[str, Hashable], Any] = field(default_factory=dict)

    def cached(self, uri: str, aspect: Hashable = RESOURCE) -> Any | None:
        """A resource (or another aspect of it) from this request's memo or the index cache."""
        key = (uri, aspect)
        if key not in self._memo:
            value = self.index.get(uri, aspect)
            if value is None:
                return None
            self._memo[key] = value
        return self._memo[key]

    def remember(self, uri: str, value: Any, aspect: Hashable = RESOURCE) -> Any:
        self._memo[(uri, aspect)] = value
        self.index.put(uri, value, aspect)
        return value

    def resource(self, uri: str) -> dict[str, Any] | None:
        """An expanded study or series (None if deleted since it was found)."""
        cached = self.cached(uri)
        if cached is not None:
            return cached
        data = get_if_exists(self.core, uri)
        return None if data is None else self.remember(uri, loads(data))

    def children(self, uri: str) -> list[dict[str, Any]]:
        """The expanded children listed by the core (`/studies/{id}/series`), remembered."""
        children = loads(get_if_exists(self.core, uri) or b"[]")
        for child in children:
            if child["Type"] != INSTANCE:
                self.remember(uri_of(child["Type"], child["ID"]), child)
        return children

    def children_of(self, parent: ResourcePath, level: str) -> Iterator[dict[str, Any]]:
        """The expanded resources of the level below the path's study or series (of each
        of them, if its UIDs are repeated). The parents are known from the series the
        request found below the path for its ETag (`request_scope`): locating them again cost
        one more `/tools/find`, ~40 ms at 50,000 studies whatever it asks."""
        key = "ID" if parent.level == SERIES else "ParentStudy"
        series = found_resources(self.core, parent, level=SERIES)
        for parent_id in dict.fromkeys(one[key] for one in series):
            yield from self.children(f"{uri_of(parent.level, parent_id)}/{PLURAL[level]}")

    def expanded(self, level: str, found: list[Any], ids_only: bool) -> list[dict[str, Any]]:
        """The expanded resources of a core's answer of the level: remembered as they are,
        or, when the core only named them (`ids_only`), read from the cache and the core."""
        if not ids_only:
            if level != INSTANCE:
                for resource in found:
                    self.remember(uri_of(level, resource["ID"]), resource)
            return found
        uris = [uri_of(level, orthanc_id) for orthanc_id in found]
        self.read_missing(level, [uri for uri in uris if self.cached(uri) is None])
        return [resource for uri in uris if (resource := self.resource(uri)) is not None]

    def read_missing(self, level: str, uris: Sequence[str]) -> None:
        """Read index entries not cached: all the level's at once when they are most of the
        database, else one by one as they are needed."""
        if self._worth_listing_all(level, len(uris)):
            for resource in self._listing(level):
                self.remember(uri_of(level, resource["ID"]), resource)

    def _listing(self, level: str) -> Iterator[dict[str, Any]]:
        """Every expanded resource of the level, in one call or in pages. A resource deleted
        between two pages shifts the next ones: one it skips is read alone when needed."""
        if self._statistics[STATISTICS_COUNT[level]] <= LISTING_PAGE:
            yield from get_json(self.core, f"/{PLURAL[level]}?expand")
            return
        since = 0
        while True:
            uri = f"/{PLURAL[level]}?expand&since={since}&limit={LISTING_PAGE}"
            page = get_json(self.core, uri)
            yield from page
            if len(page) < LISTING_PAGE:
                return
            since += len(page)

    def load_parents(self, resources: Sequence[dict[str, Any]], level: str) -> None:
        """Read the parents of these resources of the level that are not cached: all at once
        when they are most of the database."""
        for parent_level in levels_down_to(level)[-2::-1]:
            key = "ParentStudy" if parent_level == STUDY else "ParentSeries"
            parents = {uri_of(parent_level, resource[key]) for resource in resources}
            self.read_missing(parent_level, [uri for uri in parents if self.cached(uri) is None])
            resources = [self.parent_of(resource) for resource in resources]

    def _worth_listing_all(self, level: str, count: int) -> bool:
        """Whether `count` resources of the level cost less listed all than one by one
        (measured: ~0.1 ms per resource read, ~0.06 ms per resource of the database listed)."""
        return count >= BULK_MINIMUM and 2 * count >= self._statistics[STATISTICS_COUNT[level]]

    @cached_property
    def _statistics(self) -> dict[str, Any]:
        return get_json(self.core, "/statistics")

    def parent_of(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The parent series or study."""
        if resource["Type"] == INSTANCE:
            uri = uri_of(SERIES, resource["ParentSeries"])
        else:
            uri = uri_of(STUDY, resource["ParentStudy"])
        parent = self.resource(uri)
        if parent is None:  # deleted since its child was found
            raise not_found(f"{uri} was deleted during the search")
        return parent

    def chain(self, resource: dict[str, Any]) -> list[dict[str, Any]]:
        """The resource and its parents, study first."""
        chain = [resource]
        while chain[-1].get("Type") != STUDY:
            chain.append(self.parent_of(chain[-1]))
        return chain[::-1]

    # --- Series of studies (computed study attributes) ---------------------------------------

    def load_series_of_studies(self, studies: Iterable[dict[str, Any]]) -> None:
        """The expanded series of these studies that are not cached, in as few core calls as
        possible: every series of the database when they are most of them, else the series of
        each study (a `/tools/find` on a list of UIDs costs far more: ~0.4 ms per UID)."""
        missing = {
            study["ID"]: uris
            for study in studies
            if (uris := [u for u in _series_uris(study) if self.cached(u) is None])
        }
        self.read_missing(SERIES, [uri for uris in missing.values() for uri in uris])
        for study_id, uris in missing.items():
            if any(self.cached(uri) is None for uri in uris):
                self.children(f"/studies/{study_id}/series")

    def series_of(self, study: dict[str, Any]) -> list[dict[str, Any]]:
        """The expanded series of a study (those deleted since it was found left out)."""
        uris = _series_uris(study)
        if any(self.cached(uri) is None for uri in uris):
            self.load_series_of_studies([study])
        return [s for uri in uris if (s := self.resource(uri)) is not None]


def _series_uris(study: dict[str, Any]) -> list[str]:
    return [uri_of(SERIES, series_id) for series_id in study.get("Series", ())]
