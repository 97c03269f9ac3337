"""Saved jobs: each job in its own global property of the Orthanc database, with an index.

With `SaveJobs`, jobs survive a restart and can be read by any Orthanc sharing the database.
"""

from __future__ import annotations

import json
import logging
import threading

from ..orthanc.core import GlobalProperties
from ..orthanc.storage_ids import FIRST_JOB_PROPERTY, JOBS_INDEX_PROPERTY
from .model import Job

log = logging.getLogger(__name__)


class JobStore:
    """Saves each job in its own global property, with an index of the saved jobs."""

    def __init__(self, properties: GlobalProperties) -> None:
        self.properties = properties
        self._lock = threading.Lock()

    def _index(self) -> dict[str, int]:
        text = self.properties.get_global_property(JOBS_INDEX_PROPERTY)
        try:
            index = json.loads(text) if text else {}
        except ValueError:
            log.error("Unreadable index of saved jobs; starting with no saved job")
            return {}
        return index if isinstance(index, dict) else {}

    def _write_index(self, index: dict[str, int]) -> None:
        self.properties.set_global_property(JOBS_INDEX_PROPERTY, json.dumps(index))

    def save(self, job: Job) -> None:
        with self._lock:
            index = self._index()
            key = index.get(job.id)
            if key is None:
                used = set(index.values())
                key = next(k for k in range(FIRST_JOB_PROPERTY, 1 << 30) if k not in used)
                index[job.id] = key
                self._write_index(index)
            self.properties.set_global_property(key, json.dumps(job.to_saved()))

    def load(self, job_id: str) -> Job | None:
        key = self._index().get(job_id)
        return self._read(key) if key is not None else None

    def load_all(self) -> list[Job]:
        jobs = (self._read(key) for key in self._index().values())
        return [job for job in jobs if job is not None]

    def _read(self, key: int) -> Job | None:
        text = self.properties.get_global_property(key)
        try:
            return Job.from_saved(json.loads(text)) if text else None
        except (ValueError, KeyError, TypeError):
            log.error("Unreadable saved job in global property %d; ignored", key)
            return None

    def delete(self, job_id: str) -> None:
        with self._lock:
            index = self._index()
            key = index.pop(job_id, None)
            if key is not None:
                self.properties.set_global_property(key, "")
                self._write_index(index)
