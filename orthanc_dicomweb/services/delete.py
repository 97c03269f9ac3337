"""Server-side DELETE of studies, series and instances (`DicomWeb.EnableDelete`, off by default).

`DELETE {Root}studies/{study}[/series/{series}[/instances/{instance}]]` removes the resources
through the core (`DELETE /studies/{id}` and the like), the parent UIDs of the path checked;
204 when done, 404 when unknown. Without the option the routes have no DELETE: 405. After an
instance is removed, its series' metadata cache is built again, so that the next series or study
metadata is read from the cache rather than computed (its key no longer matches, so it is never
served stale meanwhile). That costs about a second for 300 instances: one background thread
does it after the answer, once for a burst of deletions in a series.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from ..config import Configuration
from ..errors import HttpError
from ..http.web import Request, Response
from ..orthanc.core import Core, CoreError
from ..orthanc.resources import ResourcePath, find_resources, only_one
from .metadata.cache import SeriesMetadataCache

log = logging.getLogger(__name__)
CORE_URIS = {"Study": "/studies", "Series": "/series", "Instance": "/instances"}


class DeleteResources:
    """The DELETE handler of the study, series and instance routes."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.core = core
        self.cache = SeriesMetadataCache(config, core)
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dicomweb-delete")

    def delete(self, request: Request) -> Response:
        if self.config.read_only:
            raise HttpError(403, "Orthanc is read-only (ReadOnly): nothing can be deleted")
        path = ResourcePath.from_groups(request.groups)
        found = find_resources(self.core, path)
        resource_id = only_one([resource["ID"] for resource in found], path)
        self.core.delete(f"{CORE_URIS[path.level]}/{resource_id}")
        log.info("DELETE %s: Orthanc %s %s removed", request.path, path.level, resource_id)
        if path.level == "Instance":
            self._update_series_cache(found[0]["ParentSeries"])
        return Response(b"", "text/plain", 204)

    def _update_series_cache(self, series_id: str) -> None:
        if not self.config.enable_metadata_cache:
            return
        with self._lock:
            if series_id in self._pending:
                return  # a rebuild waits already, and will see this deletion
            self._pending.add(series_id)
        self._worker.submit(self._rebuild, series_id)

    def _rebuild(self, series_id: str) -> None:
        with self._lock:
            self._pending.discard(series_id)  # deletions from now on ask for another rebuild
        try:
            self.cache.rebuild(series_id)
        except CoreError as error:
            if error.status != 404:  # 404: the series went with its last instance
                log.exception("metadata cache of series %s not rebuilt", series_id)
        except Exception:  # the worker must survive whatever a rebuild meets
            log.exception("metadata cache of series %s not rebuilt", series_id)
