"""The composition root: the configuration and the core in, every service wired, routes out.

The entry script (`orthanc_dicomweb_plugin.py`) hands what `build` returns to the runtime;
nothing else constructs services, thread pools or listeners.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .client.servers import ServerRegistry, ServersService
from .client.service import DicomWebClient
from .client.webapp import WebApplication, explorer_script
from .config import Configuration
from .http.caching import HttpCaching
from .http.layer import HttpLayer
from .http.routes import Route, Services, route_table
from .jobs.api import JobsApi
from .jobs.cluster import cluster_engine_for
from .jobs.engine import engine_for
from .orthanc.core import Core
from .orthanc.index_cache import IndexCache
from .orthanc.stored_instances import ParsedFiles
from .services.bulkdata import RetrieveBulkdata
from .services.delete import DeleteResources
from .services.frames import RetrieveFrames
from .services.identity import PluginIdentity
from .services.metadata import cache as metadata_cache
from .services.metadata.service import MetadataCacheUpdate, RetrieveMetadata
from .services.qido.search import SearchService
from .services.rendered import RetrieveRendered
from .services.retrieve import RetrieveInstances
from .services.stow import StoreInstances
from .services.wado_uri import WadoUri

ChangeListener = Callable[[str, str, str], None]


@dataclass(frozen=True)
class Plugin:
    """What the runtime registers: REST routes, change listeners, Orthanc Explorer's script."""

    routes: list[Route]
    change_listeners: list[ChangeListener]
    explorer_script: str


def build(
    config: Configuration, core: Core, wait_until_idle: Callable[[], None] = lambda: None
) -> Plugin:
    """The plugin for this configuration; no route and no listener when DICOMweb is disabled.

    `wait_until_idle` lets the metadata cache's background work yield to requests."""
    if not config.enable:
        return Plugin([], [], "")
    # Index entries kept between searches; told of deletions.
    index = IndexCache(core, config.qido_index_cache_size)
    engine = cluster_engine_for(config, core) or engine_for(config, core)
    files = ParsedFiles()  # parsed instance files shared by frames, rendered and WADO-URI
    retrieve = RetrieveInstances(config, core)
    servers = ServerRegistry(config, core)
    services = Services(
        identity=PluginIdentity(core),
        stow=StoreInstances(config, core),
        search=SearchService(config, core, index),
        caching=HttpCaching(config, core, index),
        retrieve=retrieve,
        frames=RetrieveFrames(config, core, files),
        delete=DeleteResources(config, core) if config.enable_delete else None,
        metadata=RetrieveMetadata(config, core),
        bulkdata=RetrieveBulkdata(config, core),
        cache_update=MetadataCacheUpdate(config, core),
        rendered=RetrieveRendered(config, core, files),
        wado_uri=WadoUri(config, core, files) if config.enable_wado else None,
        servers=ServersService(config, servers),
        client=DicomWebClient(config, core, servers, engine),
        jobs=JobsApi(core, engine),
        webapp=WebApplication(config, servers),
        layer=HttpLayer(config),
    )
    listeners: list[ChangeListener] = [
        index.change_listener,
        engine.change_listener,  # restores the saved jobs once Orthanc has started
        metadata_cache.change_listener(config, core, wait_until_idle),
    ]
    return Plugin(route_table(config, services), listeners, explorer_script(config))
