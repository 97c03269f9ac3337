"""How tools detect the DICOMweb plugin: `/plugins` and `/plugins/dicom-web`."""

from __future__ import annotations

import json

from .. import __version__
from ..http.web import Request, Response, json_response
from ..orthanc.core import Core, get_json

PLUGIN_ID = "dicom-web"
DESCRIPTION = "Implementation of DICOMweb (QIDO-RS, STOW-RS and WADO-RS) and WADO-URI."


def plugin_description() -> dict[str, object]:
    return {
        "ID": PLUGIN_ID,
        "Version": __version__,
        "Description": DESCRIPTION,
        "ExtendsOrthancExplorer": True,
    }


class PluginIdentity:
    def __init__(self, core: Core) -> None:
        self.core = core

    def describe(self, request: Request) -> Response:
        return json_response(plugin_description())

    def list_plugins(self, request: Request) -> Response:
        """The core's list with `dicom-web` added (our route shadows the core's one)."""
        plugins = [p for p in get_json(self.core, "/plugins") if p != PLUGIN_ID]
        return Response(json.dumps(sorted([*plugins, PLUGIN_ID])).encode())
