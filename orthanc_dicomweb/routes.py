"""The route table: every URI the plugin serves, and the handler behind it.

One line per URI pattern; the configuration decides which lines exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from . import identity
from .bulkdata import RetrieveBulkdata
from .capabilities import Capabilities
from .client import DicomWebClient
from .config import Configuration
from .core import Core
from .delete import DeleteResources
from .frames import RetrieveFrames
from .http_caching import HttpCaching
from .http_layer import HttpLayer
from .index_cache import IndexCache
from .jobs import Engine, engine_for
from .jobs_api import JobsApi
from .qido import SearchService
from .rendered import RetrieveRendered
from .servers import ServerRegistry, ServersService
from .stored_instances import ParsedFiles
from .stow import StoreInstances
from .wado_metadata import MetadataCacheUpdate, RetrieveMetadata
from .wado_retrieve import RetrieveInstances
from .wado_uri import WadoUri
from .web import Answer, Handler, Request, handle
from .webapp import WebApplication
from .zip_retrieve import ZipRetrieve

ANY_UID = r"([^/]+)"
"""A DICOM UID in a path: anything up to the next slash, so handlers report malformed ones."""


@dataclass(frozen=True)
class Route:
    pattern: str
    handlers: Mapping[str, Handler]
    respond: Callable[[Mapping[str, Handler], Request], Answer] = handle


def route_table(
    config: Configuration,
    core: Core,
    index: IndexCache | None = None,
    engine: Engine | None = None,
) -> list[Route]:
    """All routes of the enabled services; empty when DICOMweb is disabled. `index` keeps
    index entries between searches; it must be told of deletions (its change listener).
    `engine` runs the client's jobs; its change listener restores the saved ones."""
    if not config.enable:
        return []
    plugin = identity.PluginIdentity(core)
    routes = [
        Route("/plugins/dicom-web", {"GET": plugin.describe}),
        Route("/plugins", {"GET": plugin.list_plugins}),
    ]
    # STOW-RS: Store Instances
    stow = StoreInstances(config, core)
    routes += [
        Route(dicomweb_path(config, "studies"), {"POST": stow.store}),
        Route(dicomweb_path(config, f"studies/{ANY_UID}"), {"POST": stow.store}),
    ]
    # QIDO-RS: Search for Studies / Series / Instances
    search = SearchService(config, core, index)
    caching = HttpCaching(config, core)  # ETags and 304s (http_caching.py)
    routes += [
        Route(
            dicomweb_path(config, "studies"), {"GET": caching.collection(search.search_for_studies)}
        ),
        Route(
            dicomweb_path(config, "series"), {"GET": caching.collection(search.search_for_series)}
        ),
        Route(
            dicomweb_path(config, "instances"),
            {"GET": caching.collection(search.search_for_instances)},
        ),
        Route(
            dicomweb_path(config, f"studies/{ANY_UID}/series"),
            {"GET": caching.covered(search.search_for_series)},
        ),
        Route(
            dicomweb_path(config, f"studies/{ANY_UID}/instances"),
            {"GET": caching.covered(search.search_for_instances)},
        ),
        Route(
            dicomweb_path(config, f"studies/{ANY_UID}/series/{ANY_UID}/instances"),
            {"GET": caching.covered(search.search_for_instances)},
        ),
    ]
    # WADO-RS: Retrieve Study / Series / Instance, Retrieve Frames
    retrieve = RetrieveInstances(config, core)
    files = ParsedFiles()  # shared by frames, rendered and WADO-URI
    frames = RetrieveFrames(config, core, files)
    study = f"studies/{ANY_UID}"
    series = f"{study}/series/{ANY_UID}"
    instance = f"{series}/instances/{ANY_UID}"
    zipped = ZipRetrieve(retrieve).handler(retrieve.retrieve)  # Accept: application/zip
    routes += [
        Route(dicomweb_path(config, study), {"GET": zipped}),
        Route(dicomweb_path(config, series), {"GET": zipped}),
        Route(dicomweb_path(config, instance), {"GET": caching.instance(retrieve.retrieve)}),
        Route(
            dicomweb_path(config, f"{instance}/frames/([^/]+)"),
            {"GET": caching.instance(frames.retrieve_frames)},
        ),
    ]
    if config.enable_delete:
        delete = {"DELETE": DeleteResources(config, core).delete}
        routes += [
            Route(dicomweb_path(config, level), delete) for level in (study, series, instance)
        ]
    # WADO-RS: Retrieve Metadata (and its cache), Retrieve Bulkdata
    metadata = RetrieveMetadata(config, core)
    bulkdata = RetrieveBulkdata(config, core)
    cache = MetadataCacheUpdate(config, core)
    routes += [
        Route(
            dicomweb_path(config, f"{study}/metadata"),
            {"GET": caching.covered(metadata.study_metadata)},
        ),
        Route(
            dicomweb_path(config, f"{series}/metadata"),
            {"GET": caching.covered(metadata.series_metadata)},
        ),
        Route(
            dicomweb_path(config, f"{instance}/metadata"),
            {"GET": caching.instance(metadata.instance_metadata)},
        ),
        Route(
            dicomweb_path(config, f"{instance}/bulk/(.+)"),
            {"GET": caching.instance(bulkdata.retrieve_bulkdata)},
        ),
        Route(r"^/studies/([^/]+)/update-dicomweb-cache$", {"POST": cache.update_study}),
    ]
    # WADO-RS: Retrieve Rendered and Retrieve Thumbnail; WADO-URI
    rendered = RetrieveRendered(config, core, files)
    for resource in (study, series, instance, f"{instance}/frames/([^/]+)"):
        tagged = caching.instance if resource.startswith(instance) else caching.covered
        routes += [
            Route(
                dicomweb_path(config, f"{resource}/rendered"), {"GET": tagged(rendered.rendered)}
            ),
            Route(
                dicomweb_path(config, f"{resource}/thumbnail"), {"GET": tagged(rendered.thumbnail)}
            ),
        ]
    if config.enable_wado:
        wado_root = "^" + re.escape(config.wado_root_path) + "$"
        routes.append(Route(wado_root, {"GET": WadoUri(config, core, files).retrieve}))
    # DICOMweb client: remote servers, proxied calls, STOW-RS / WADO-RS jobs, /jobs
    servers = ServerRegistry(config, core)
    servers_api = ServersService(config, servers)
    engine = engine or engine_for(config, core)
    client = DicomWebClient(config, core, servers, engine)
    jobs = JobsApi(core, engine)
    server = "servers/([^/]+)"
    routes += [
        Route(dicomweb_path(config, "servers/?"), {"GET": servers_api.list_servers}),
        Route(
            dicomweb_path(config, server),
            {
                "GET": servers_api.get_server,
                "PUT": servers_api.put_server,
                "POST": servers_api.update_server,
                "DELETE": servers_api.delete_server,
            },
        ),
        Route(dicomweb_path(config, f"{server}/get"), {"POST": client.get}),
        Route(dicomweb_path(config, f"{server}/qido"), {"POST": client.qido}),
        Route(dicomweb_path(config, f"{server}/delete"), {"POST": client.delete}),
        Route(dicomweb_path(config, f"{server}/stow"), {"POST": client.stow}),
        Route(dicomweb_path(config, f"{server}/retrieve"), {"POST": client.retrieve}),
        Route(dicomweb_path(config, f"{server}/wado"), {"POST": client.wado}),
        Route("^/jobs$", {"GET": jobs.list_jobs}),
        Route("^/jobs/([^/]+)$", {"GET": jobs.get_job}),
        Route("^/jobs/([^/]+)/([^/]+)$", {"GET": jobs.job_output, "POST": jobs.act}),
    ]
    # DICOMweb client web application: its static files and what it needs to know
    webapp = WebApplication(config, servers)
    routes += [
        Route(dicomweb_path(config, "app/client(?:/(.*))?"), {"GET": webapp.static_file}),
        Route(dicomweb_path(config, "info"), {"GET": webapp.info}),
    ]
    # Retrieve Capabilities: exactly the routes above, as WADL
    served = [(route.pattern, route.handlers.keys()) for route in merge_same_patterns(routes)]
    capabilities = Capabilities(config.root, served).answer
    root = "^" + re.escape(config.root.rstrip("/")) + "/?$"  # the core drops a trailing slash
    routes.append(Route(root, {"GET": capabilities, "OPTIONS": capabilities}))
    layer = HttpLayer(config)  # `accept` parameter, CORS (http_layer.py)
    return [replace(route, respond=layer.respond) for route in merge_same_patterns(routes)]


def merge_same_patterns(routes: list[Route]) -> list[Route]:
    """One route per pattern, with the methods of all services (Orthanc keeps one callback)."""
    merged: dict[str, dict[str, Handler]] = {}
    for route in routes:
        merged.setdefault(route.pattern, {}).update(route.handlers)
    return [Route(pattern, handlers) for pattern, handlers in merged.items()]


def dicomweb_path(config: Configuration, suffix: str) -> str:
    """A regular expression for a path below the DICOMweb root."""
    return "^" + re.escape(config.root) + suffix + "$"
