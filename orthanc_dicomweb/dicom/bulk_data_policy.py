"""How binary and over-long values appear in metadata: the bulk data policy of the DICOM JSON
model (WADO-RS passes its `OtherBinaryMode`; `dicom_json.from_orthanc_tags` follows it)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .character_sets import decode_text
from .tags import PIXEL_DATA_TAGS, TagPath
from .values import ARRAY_FORMATS, binary_values, element, element_from_text

OTHER_BINARY_MODES = ("BulkDataURI", "InlineBinary", "ArrayOfValues")


@dataclass(frozen=True)
class BulkDataPolicy:
    """How binary and over-long values appear in metadata (WADO-RS passes its `OtherBinaryMode`).

    - Pixel data (7FE0,0008/0009/0010, at any depth) is always a BulkDataURI.
    - An empty value is `{"vr": vr}` alone, in every mode (F.2.5). The core's tags say "Null"
      for empty and non-empty binary values alike: the value is read to tell them apart.
    - OB/OD/OF/OL/OV/OW/UN values follow `mode`: "BulkDataURI" -> `uri_for(path)`;
      "InlineBinary" -> base64 of `read_binary(path)`; "ArrayOfValues" -> the bytes read as
      little-endian numbers of the VR's width in "Value" (OB bytes, OW uint16, OL uint32,
      OV uint64, OF float32, OD float64; UN falls back to BulkDataURI).
    - Text values too long for the core's /tags (Type "TooLong") are read through
      `read_binary` when given, else a BulkDataURI.
    - AT values are read through `read_binary` when given: the core's text keeps only the
      first tag of a multi-valued AT.
    When the callback a case needs is missing, the next possible form is used; when none is
    possible the attribute is left out of the dataset (None).
    """

    mode: str = "BulkDataURI"
    uri_for: Callable[[TagPath], str] | None = None
    read_binary: Callable[[TagPath], bytes] | None = None

    def binary_element(
        self, path: TagPath, vr: str, inline: bytes | None = None
    ) -> dict[str, Any] | None:
        """The attribute for a binary value; `inline` when its bytes are already at hand."""
        if path[-1] in PIXEL_DATA_TAGS:
            return self._uri_element(path, vr)
        data = inline if inline is not None else self._read(path)
        if data == b"":
            return {"vr": vr}
        if self.mode == "InlineBinary" and data is not None:
            return {"vr": vr, "InlineBinary": base64.b64encode(data).decode("ascii")}
        if self.mode == "ArrayOfValues" and vr in ARRAY_FORMATS and data is not None:
            return element(vr, binary_values(vr, data))
        by_uri = self._uri_element(path, vr)
        if by_uri is None and inline is not None:
            return {"vr": vr, "InlineBinary": base64.b64encode(inline).decode("ascii")}
        return by_uri

    def too_long_element(
        self, path: TagPath, vr: str, context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The attribute for a text value the core left out for its length."""
        data = self._read(path)
        if data is not None:
            return element_from_text(vr, decode_text(data, context.get("SpecificCharacterSet")))
        return self._uri_element(path, vr)

    def _uri_element(self, path: TagPath, vr: str) -> dict[str, Any] | None:
        return None if self.uri_for is None else {"vr": vr, "BulkDataURI": self.uri_for(path)}

    def _read(self, path: TagPath) -> bytes | None:
        return None if self.read_binary is None else self.read_binary(path)


__all__ = ["OTHER_BINARY_MODES", "BulkDataPolicy"]
