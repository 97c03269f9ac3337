"""What the parts of one QIDO-RS search share: its scope (level, query, wanted attributes) and
its results (state lives one request)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ...config import Configuration
from ...dicom import json_model as dicom_json
from ...dicom.tags import tag_key
from ...orthanc.core import Core
from .attributes import INSTANCE, available_without_tags, default_tags
from .index import IndexEntries
from .matching import SearchQuery


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


@dataclass(frozen=True)
class SearchScope:
    """One search's level and query, the attributes its answer holds, and where it reads."""

    config: Configuration
    core: Core
    entries: IndexEntries
    level: str
    query: SearchQuery

    @cached_property
    def wanted(self) -> frozenset[int]:
        return default_tags(self.level, self.query.matched_tags) | self.query.returned_tags

    @cached_property
    def wanted_keys(self) -> tuple[str, ...]:
        """The wanted attributes' keys, in the order of the answer."""
        return tuple(tag_key(tag) for tag in sorted(self.wanted))

    @cached_property
    def reads_tags(self) -> bool:
        """Whether every result needs its instance's tags (else only sequence matching does)."""
        return (
            self.level == INSTANCE
            or self.query.include_all
            or bool(self.query.returned_tags - available_without_tags(self.level))
        )
