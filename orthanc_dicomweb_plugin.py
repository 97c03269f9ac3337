"""Entry script named by the `PythonScript` option: reads configuration, registers the plugin."""

import logging

from orthanc_dicomweb import __version__, plugin
from orthanc_dicomweb.config import ConfigurationError, parse_configuration
from orthanc_dicomweb.dicom import dictionary
from orthanc_dicomweb.orthanc import runtime

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
    built = plugin.build(config, core, runtime.wait_until_idle)
    runtime.register_routes(built.routes)
    for listener in built.change_listeners:
        runtime.add_change_listener(listener)
    if built.explorer_script:
        runtime.extend_orthanc_explorer(built.explorer_script)
    if config.enable:
        wado = f", WADO-URI at {config.wado_root_path}" if config.enable_wado else ""
        log.warning(
            "plugin %s serves DICOMweb at %s%s (%d routes)",
            __version__,
            config.root,
            wado,
            len(built.routes),
        )
    else:
        log.warning("plugin %s loaded, disabled by DicomWeb.Enable", __version__)
