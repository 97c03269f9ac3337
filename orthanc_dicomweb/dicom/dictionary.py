"""The Orthanc configuration's `Dictionary` option: tags the core was taught, taught to pydicom.

The core reads `"Dictionary": {"0009,1001": ["DS", "Abnormality score", 1, 1, "Lunit"]}` into
DCMTK's dictionary, so it stores and indexes such tags; but it gives no VRs in its JSON, and
the plugin takes VRs from pydicom's dictionaries. Without these entries a configured private
tag would be "UN" (binary, left out of QIDO-RS answers) instead of its VR: Orthanc's issue 168.

Each entry is `[VR, Name, MinMultiplicity, MaxMultiplicity (0: unbounded), PrivateCreator]`,
the last one for private tags only. Private entries hold for any reservation block of their
creator (the core's dictionary ignores the block too); private creator elements (gggg,0010-
00FF) are always LO and need no entry; a private entry without a creator is not used (the VR
of a private tag is only known with its creator).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import add_dict_entries, add_private_dict_entries

from ..config import ConfigurationError
from ..errors import HttpError
from .json_model import forget_dictionary_lookups
from .tags import parse_tag

OPTION = "Dictionary"


@dataclass(frozen=True)
class DictionaryEntry:
    tag: int
    vr: str
    name: str
    multiplicity: str  # pydicom's VM text: "1", "1-n", "2-4"
    private_creator: str | None = None

    @property
    def is_private(self) -> bool:
        return bool(self.tag >> 16 & 1)


def parse_dictionary(configuration: Mapping[str, Any]) -> tuple[DictionaryEntry, ...]:
    """The entries of the `Dictionary` option of the whole Orthanc configuration."""
    section = configuration.get(OPTION, {})
    if not isinstance(section, Mapping):
        raise ConfigurationError(OPTION, "must be a JSON object")
    return tuple(_entry(key, value) for key, value in section.items())


def _entry(key: str, value: Any) -> DictionaryEntry:
    where = f"{OPTION}.{key}"
    try:
        tag = parse_tag(key)
    except HttpError as error:
        raise ConfigurationError(where, "does not name a tag (gggg,eeee)") from error
    if not (isinstance(value, list) and 2 <= len(value) <= 5):
        raise ConfigurationError(where, "must be [VR, Name, Min, Max, PrivateCreator]")
    vr, name, *rest = value
    bounds = [*rest[:2], 1, 1][:2]
    creator = rest[2] if len(rest) > 2 else None
    if not (isinstance(vr, str) and len(vr) == 2 and isinstance(name, str)):
        raise ConfigurationError(where, f"needs a VR and a name, not {value!r}")
    if not all(isinstance(bound, int) and bound >= 0 for bound in bounds):
        raise ConfigurationError(where, f"has multiplicities that are not integers: {value!r}")
    if creator is not None and not isinstance(creator, str):
        raise ConfigurationError(where, f"has a private creator that is not a string: {value!r}")
    return DictionaryEntry(tag, vr.upper(), name, _multiplicity(*bounds), creator or None)


def _multiplicity(low: int, high: int) -> str:
    if high == 0:
        return f"{low}-n"
    return str(low) if low == high else f"{low}-{high}"


def register(entries: tuple[DictionaryEntry, ...]) -> None:
    """Teach pydicom the entries (process-wide, as the core's dictionary is)."""
    for entry in entries:
        definition = (entry.vr, entry.multiplicity, entry.name, "")
        if not entry.is_private:
            keyword = entry.name if entry.name.isidentifier() else ""
            add_dict_entries({entry.tag: (*definition, keyword)})
        elif entry.private_creator and (entry.tag & 0xFFFF) >= 0x1000:
            add_private_dict_entries(entry.private_creator, {entry.tag: definition})
    if entries:
        forget_dictionary_lookups()
