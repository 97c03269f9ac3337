"""SpecificCharacterSet: its values as the core gives them, and decoding raw text with it.

Values from the core are already Unicode: answers are always UTF-8. SpecificCharacterSet
stays the file's in datasets read from files (`character_set_element`, as the official
plugin); the core's main tags have none, and get "ISO_IR 192" (`utf8_charset_element`).
"""

from __future__ import annotations

import re
from typing import Any

from pydicom import charset as pydicom_charset

_CHARSET_SEPARATOR = re.compile(r"[\\\u00a5]")  # backslash, or yen (see `character_set_terms`)


def character_set_terms(text: str) -> list[str]:
    """The values of a SpecificCharacterSet as the core gives them, empty ones included.

    The core decodes the value through the repertoire it names: with ISO 2022 IR 13 (JIS X
    0201) the separator 0x5C reads as "¥". Defined terms are ASCII, so both separate values.
    """
    return [term.strip(" \0") for term in _CHARSET_SEPARATOR.split(text)]


def character_set_element(text: str | None) -> dict[str, Any]:
    """SpecificCharacterSet as the file has it, its empty values left out: what the official
    plugin answers (and Orthanc's suite expects) in metadata, although the JSON is Unicode."""
    terms = [term for term in character_set_terms(text or "") if term]
    return {"vr": "CS", "Value": terms} if terms else {"vr": "CS"}


def utf8_charset_element() -> dict[str, Any]:
    """SpecificCharacterSet for answers: the JSON model is always Unicode, sent as UTF-8."""
    return {"vr": "CS", "Value": ["ISO_IR 192"]}


def decode_text(data: bytes, specific_character_set: str | None) -> str:
    """Raw text bytes of a dataset as Unicode, through its SpecificCharacterSet."""
    if data.isascii():
        return data.decode("ascii")
    terms = character_set_terms(specific_character_set or "")
    try:
        encodings = pydicom_charset.convert_encodings(terms if any(terms) else ["ISO_IR 192"])
    except (LookupError, ValueError):  # a garbled name (e.g. with a NUL): what is not a charset
        encodings = pydicom_charset.convert_encodings(["ISO_IR 192"])
    # Backslash (0x5C) is the value delimiter that resets ISO 2022 code extensions.
    return pydicom_charset.decode_bytes(data, encodings, {0x5C})


__all__ = [
    "character_set_element",
    "character_set_terms",
    "decode_text",
    "utf8_charset_element",
]
