"""Entry script named by Orthanc's `PythonScript` option: reads configuration, wires routes."""

import logging

from orthanc_dicomweb import __version__, dictionary, metadata_cache, runtime, webapp
from orthanc_dicomweb.cluster_jobs import cluster_engine_for
from orthanc_dicomweb.config import ConfigurationError, parse_configuration
from orthanc_dicomweb.index_cache import IndexCache
from orthanc_dicomweb.jobs import engine_for
from orthanc_dicomweb.routes import route_table

runtime.install_logging()
log = logging.getLogger("orthanc_dicomweb")
core = runtime.OrthancCore()
try:
    orthanc_configuration = core.configuration()
    config = parse_configuration(orthanc_configuration)
    dictionary.register(dictionary.parse_dictionary(orthanc_configuration))
except ConfigurationError as error:
    log.error("%s; no DICOMweb route is registered", error)
else:
    index = IndexCache(core)
    engine = cluster_engine_for(config, core) or engine_for(config, core)
    routes = route_table(config, core, index, engine)
    runtime.register_routes(routes)
    if config.enable:
        runtime.add_change_listener(index.change_listener)
        runtime.add_change_listener(engine.change_listener)  # restores the saved jobs
        runtime.add_change_listener(
            metadata_cache.change_listener(config, core, runtime.wait_until_idle)
        )
        runtime.extend_orthanc_explorer(webapp.explorer_script(config))
        wado = f", WADO-URI at {config.wado_root_path}" if config.enable_wado else ""
        log.warning(
            "plugin %s serves DICOMweb at %s%s (%d routes)",
            __version__,
            config.root,
            wado,
            len(routes),
        )
    else:
        log.warning("plugin %s loaded, disabled by DicomWeb.Enable", __version__)
