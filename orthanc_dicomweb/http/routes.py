"""The route table: every URI the plugin serves, and the handler behind it.

One line per URI pattern; the configuration decides which lines exist. The services are
built by the composition root, `plugin.build`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from ..client.servers import ServersService
from ..client.service import DicomWebClient
from ..client.webapp import WebApplication
from ..config import Configuration
from ..jobs.api import JobsApi
from ..services.bulkdata import RetrieveBulkdata
from ..services.capabilities import Capabilities
from ..services.delete import DeleteResources
from ..services.frames import RetrieveFrames
from ..services.identity import PluginIdentity
from ..services.metadata.service import MetadataCacheUpdate, RetrieveMetadata
from ..services.qido.search import SearchService
from ..services.rendered import RetrieveRendered
from ..services.retrieve import RetrieveInstances
from ..services.stow import StoreInstances
from ..services.wado_uri import WadoUri
from ..services.zip_retrieve import ZipRetrieve
from .caching import HttpCaching
from .layer import HttpLayer
from .web import Answer, Handler, Request, handle

ANY_UID = r"([^/]+)"
"""A DICOM UID in a path: anything up to the next slash, so handlers report malformed ones."""


@dataclass(frozen=True)
class Route:
    pattern: str
    handlers: Mapping[str, Handler]
    respond: Callable[[Mapping[str, Handler], Request], Answer] = handle


@dataclass(frozen=True)
class Services:
    """The handlers' owners, built by the composition root (`plugin.build`)."""

    identity: PluginIdentity
    stow: StoreInstances
    search: SearchService
    caching: HttpCaching  # ETags and 304s around retrieve and search
    retrieve: RetrieveInstances
    frames: RetrieveFrames
    delete: DeleteResources | None  # None unless DicomWeb.EnableDelete
    metadata: RetrieveMetadata
    bulkdata: RetrieveBulkdata
    cache_update: MetadataCacheUpdate
    rendered: RetrieveRendered
    wado_uri: WadoUri | None  # None unless DicomWeb.EnableWado
    servers: ServersService
    client: DicomWebClient
    jobs: JobsApi
    webapp: WebApplication
    layer: HttpLayer  # `accept` parameter and CORS around every answer


def route_table(config: Configuration, services: Services) -> list[Route]:
    """All routes of the enabled services, each answer going through the HTTP layer."""
    s = services
    routes = [
        Route("/plugins/dicom-web", {"GET": s.identity.describe}),
        Route("/plugins", {"GET": s.identity.list_plugins}),
    ]
    # STOW-RS: Store Instances
    routes += [
        Route(dicomweb_path(config, "studies"), {"POST": s.stow.store}),
        Route(dicomweb_path(config, f"studies/{ANY_UID}"), {"POST": s.stow.store}),
    ]
    # QIDO-RS: Search for Studies / Series / Instances
    caching = s.caching
    routes += [
        Route(
            dicomweb_path(config, "studies"),
            {"GET": caching.collection(s.search.search_for_studies)},
        ),
        Route(
            dicomweb_path(config, "series"), {"GET": caching.collection(s.search.search_for_series)}
        ),
        Route(
            dicomweb_path(config, "instances"),
            {"GET": caching.collection(s.search.search_for_instances)},
        ),
        Route(
            dicomweb_path(config, f"studies/{ANY_UID}/series"),
            {"GET": caching.covered(s.search.search_for_series)},
        ),
        Route(
            dicomweb_path(config, f"studies/{ANY_UID}/instances"),
            {"GET": caching.covered(s.search.search_for_instances)},
        ),
        Route(
            dicomweb_path(config, f"studies/{ANY_UID}/series/{ANY_UID}/instances"),
            {"GET": caching.covered(s.search.search_for_instances)},
        ),
    ]
    # WADO-RS: Retrieve Study / Series / Instance, Retrieve Frames
    study = f"studies/{ANY_UID}"
    series = f"{study}/series/{ANY_UID}"
    instance = f"{series}/instances/{ANY_UID}"
    zipped = ZipRetrieve(s.retrieve).handler(s.retrieve.retrieve)  # Accept: application/zip
    routes += [
        Route(dicomweb_path(config, study), {"GET": zipped}),
        Route(dicomweb_path(config, series), {"GET": zipped}),
        Route(dicomweb_path(config, instance), {"GET": caching.instance(s.retrieve.retrieve)}),
        Route(
            dicomweb_path(config, f"{instance}/frames/([^/]+)"),
            {"GET": caching.instance(s.frames.retrieve_frames)},
        ),
    ]
    if s.delete is not None:
        delete = {"DELETE": s.delete.delete}
        routes += [
            Route(dicomweb_path(config, level), delete) for level in (study, series, instance)
        ]
    # WADO-RS: Retrieve Metadata (and its cache), Retrieve Bulkdata
    routes += [
        Route(
            dicomweb_path(config, f"{study}/metadata"),
            {"GET": caching.covered(s.metadata.study_metadata)},
        ),
        Route(
            dicomweb_path(config, f"{series}/metadata"),
            {"GET": caching.covered(s.metadata.series_metadata)},
        ),
        Route(
            dicomweb_path(config, f"{instance}/metadata"),
            {"GET": caching.instance(s.metadata.instance_metadata)},
        ),
        Route(
            dicomweb_path(config, f"{instance}/bulk/(.+)"),
            {"GET": caching.instance(s.bulkdata.retrieve_bulkdata)},
        ),
        Route(r"^/studies/([^/]+)/update-dicomweb-cache$", {"POST": s.cache_update.update_study}),
    ]
    # WADO-RS: Retrieve Rendered and Retrieve Thumbnail; WADO-URI
    for resource in (study, series, instance, f"{instance}/frames/([^/]+)"):
        tagged = caching.instance if resource.startswith(instance) else caching.covered
        routes += [
            Route(
                dicomweb_path(config, f"{resource}/rendered"),
                {"GET": tagged(s.rendered.rendered)},
            ),
            Route(
                dicomweb_path(config, f"{resource}/thumbnail"),
                {"GET": tagged(s.rendered.thumbnail)},
            ),
        ]
    if s.wado_uri is not None:
        wado_root = "^" + re.escape(config.wado_root_path) + "$"
        routes.append(Route(wado_root, {"GET": s.wado_uri.retrieve}))
    # DICOMweb client: remote servers, proxied calls, STOW-RS / WADO-RS jobs, /jobs
    server = "servers/([^/]+)"
    routes += [
        Route(dicomweb_path(config, "servers/?"), {"GET": s.servers.list_servers}),
        Route(
            dicomweb_path(config, server),
            {
                "GET": s.servers.get_server,
                "PUT": s.servers.put_server,
                "POST": s.servers.update_server,
                "DELETE": s.servers.delete_server,
            },
        ),
        Route(dicomweb_path(config, f"{server}/get"), {"POST": s.client.get}),
        Route(dicomweb_path(config, f"{server}/qido"), {"POST": s.client.qido}),
        Route(dicomweb_path(config, f"{server}/delete"), {"POST": s.client.delete}),
        Route(dicomweb_path(config, f"{server}/stow"), {"POST": s.client.stow}),
        Route(dicomweb_path(config, f"{server}/retrieve"), {"POST": s.client.retrieve}),
        Route(dicomweb_path(config, f"{server}/wado"), {"POST": s.client.wado}),
        Route("^/jobs$", {"GET": s.jobs.list_jobs}),
        Route("^/jobs/([^/]+)$", {"GET": s.jobs.get_job}),
        Route("^/jobs/([^/]+)/([^/]+)$", {"GET": s.jobs.job_output, "POST": s.jobs.act}),
    ]
    # DICOMweb client web application: its static files and what it needs to know
    routes += [
        Route(dicomweb_path(config, "app/client(?:/(.*))?"), {"GET": s.webapp.static_file}),
        Route(dicomweb_path(config, "info"), {"GET": s.webapp.info}),
    ]
    # Retrieve Capabilities: exactly the routes above, as WADL
    served = [(route.pattern, route.handlers.keys()) for route in merge_same_patterns(routes)]
    capabilities = Capabilities(config.root, served).answer
    root = "^" + re.escape(config.root.rstrip("/")) + "/?$"  # the core drops a trailing slash
    routes.append(Route(root, {"GET": capabilities, "OPTIONS": capabilities}))
    return [replace(route, respond=s.layer.respond) for route in merge_same_patterns(routes)]


def merge_same_patterns(routes: list[Route]) -> list[Route]:
    """One route per pattern, with the methods of all services (Orthanc keeps one callback)."""
    merged: dict[str, dict[str, Handler]] = {}
    for route in routes:
        merged.setdefault(route.pattern, {}).update(route.handlers)
    return [Route(pattern, handlers) for pattern, handlers in merged.items()]


def dicomweb_path(config: Configuration, suffix: str) -> str:
    """A regular expression for a path below the DICOMweb root."""
    return "^" + re.escape(config.root) + suffix + "$"
