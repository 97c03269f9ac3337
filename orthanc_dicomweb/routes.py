"""The route table: every URI the plugin serves, and the handler behind it.

One line per URI pattern; the configuration decides which lines exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import identity
from .config import Configuration
from .core import Core
from .web import Handler

UID = r"([0-9.]+)"
"""A DICOM UID in a path. Malformed UIDs still reach handlers that report them."""
ANY_UID = r"([^/]+)"


@dataclass(frozen=True)
class Route:
    pattern: str
    handlers: Mapping[str, Handler]


def route_table(config: Configuration, core: Core) -> list[Route]:
    """All routes of the enabled services; empty when DICOMweb is disabled."""
    if not config.enable:
        return []
    plugin = identity.PluginIdentity(core)
    routes = [
        Route("/plugins/dicom-web", {"GET": plugin.describe}),
        Route("/plugins", {"GET": plugin.list_plugins}),
    ]
    return routes


def dicomweb_path(config: Configuration, suffix: str) -> str:
    """A regular expression for a path below the DICOMweb root."""
    return "^" + re.escape(config.root) + suffix + "$"
