"""HTTP media types and content negotiation (RFC 9110 `Accept`), as DICOMweb clients send them.

Real clients are sloppy: unquoted `type=application/dicom`, spaces anywhere, upper case,
quoted strings holding commas or semicolons. The parser accepts all of these and only rejects
what cannot be read as `type/subtype` at all: a `Content-Type` so is a 400, an `Accept` item
so is skipped (it names nothing a route could produce).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import HttpError, bad_request, not_acceptable

WILDCARD = "*"
DICOM_JSON = "application/dicom+json"
JSON = "application/json"
DICOM_XML = "application/dicom+xml"
MULTIPART_RELATED = "multipart/related"


@dataclass(frozen=True)
class MediaType:
    """One media type or media range: `type/subtype; params; q=...` (q is not in `params`)."""

    type: str
    subtype: str
    # Excluded from the hash: a mapping is not hashable, and type/subtype/q suffice.
    params: Mapping[str, str] = field(default_factory=dict, hash=False)
    q: float = 1.0

    @property
    def essence(self) -> str:
        """`type/subtype` in lower case, without parameters."""
        return f"{self.type}/{self.subtype}".lower()

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name.lower(), default)

    def __str__(self) -> str:
        text = self.essence + "".join(f"; {k}={quote_parameter(v)}" for k, v in self.params.items())
        return text if self.q == 1.0 else f"{text}; q={self.q:g}"


def parse_media_type(text: str) -> MediaType:
    """Parse one media type such as a `Content-Type` value; HttpError 400 if it is not one."""
    pieces = _split_outside_quotes(text, ";")
    essence = pieces[0].strip()
    type_, slash, subtype = essence.partition("/")
    type_, subtype = type_.strip().lower(), subtype.strip().lower()
    if not slash or not _is_token(type_) or not _is_token(subtype):
        raise bad_request(f"Invalid media type: {text!r}")
    params: dict[str, str] = {}
    q = 1.0
    for piece in pieces[1:]:
        if not piece.strip():
            continue  # tolerate "a/b;" and "a/b;;c=d"
        name, value = _parse_parameter(piece, text)
        if name == "q":
            q = _parse_quality(value, text)
        else:
            params[name] = value
    return MediaType(type_, subtype, MappingProxyType(params), q)


def parse_accept(header: str | None) -> list[MediaType]:
    """The ranges of an `Accept` header, best q first (stable); no header means `*/*`.

    An item that is not a media range (`toto, application/dicom+json`) names nothing a route
    can produce: it is skipped, as the official plugin does, rather than failing the others.
    """
    items = [item for item in _split_outside_quotes(header or "", ",") if item.strip()]
    if not items:
        return [MediaType(WILDCARD, WILDCARD)]
    ranges = []
    for item in items:
        try:
            ranges.append(parse_media_type(item))
        except HttpError:
            continue
    return sorted(ranges, key=lambda media: -media.q)


def matches(range_: MediaType, essence: str) -> bool:
    """Whether the media range (`*/*`, `image/*`, `image/png`) covers this `type/subtype`."""
    type_, _, subtype = essence.lower().partition("/")
    if range_.type == WILDCARD:
        return True
    if range_.type != type_:
        return False
    return range_.subtype in (WILDCARD, subtype)


def quality_of(accepted: Sequence[MediaType], essence: str) -> float:
    """The q the client gives this type: that of the most specific matching range, else 0."""
    best: MediaType | None = None
    for media in accepted:
        if matches(media, essence) and (best is None or _specificity(media) > _specificity(best)):
            best = media
    return 0.0 if best is None else best.q


def choose(accepted: Sequence[MediaType], offers: Sequence[str]) -> str:
    """The best offer (highest q, then order of `offers`); HttpError 406 if none is acceptable."""
    best_offer, best_q = None, 0.0
    for offer in offers:
        q = quality_of(accepted, offer)
        if q > best_q:  # strict: on a tie the earlier offer stays
            best_offer, best_q = offer, q
    if best_offer is None:
        asked = ", ".join(str(media) for media in accepted)
        raise not_acceptable(
            f"None of the accepted media types ({asked}) can be produced; "
            f"available: {', '.join(offers)}"
        )
    return best_offer


ACCEPT_REFUSED = 400
"""The status of an `Accept` that allows nothing a WADO-RS route produces. RFC 9110 says 406;
the official plugin answers 400 and Orthanc's suite asserts it (`test_accept_negotiation`)."""


def refuse_accept(message: str) -> HttpError:
    """The WADO-RS answer to an `Accept` header allowing nothing the route produces."""
    return HttpError(ACCEPT_REFUSED, message)


def metadata_format(accept: str | None) -> str:
    """The format of a WADO-RS metadata answer: DICOM_JSON, JSON, or DICOM_XML (a multipart of
    XML parts, asked as `multipart/related; type="application/dicom+xml"` or as the XML type
    alone). Following the official plugin: JSON wins over XML at equal q, a `multipart/related`
    without a type or with a `transfer-syntax` (metadata has none) is refused. 400 if nothing
    is acceptable (`ACCEPT_REFUSED`)."""
    accepted = [media for media in parse_accept(accept) if _is_metadata_range(media)]
    return _dicom_model(accepted, accept, "Metadata", refuse_accept)


def _is_metadata_range(media: MediaType) -> bool:
    if media.essence != MULTIPART_RELATED:
        return True
    return multipart_type(media) == DICOM_XML and transfer_syntax(media) is None


def dicom_model_format(accept: str | None, what: str) -> str:
    """The format of a search or metadata answer: DICOM_JSON, JSON, or DICOM_XML for a
    multipart/related of XML parts (asked with or without the multipart, as the official
    plugin allows); 406 naming `what` when none is acceptable."""
    accepted = [
        media for media in parse_accept(accept) if multipart_type(media) in (None, DICOM_XML)
    ]
    return _dicom_model(accepted, accept, what, not_acceptable)


def _dicom_model(
    accepted: Sequence[MediaType],
    accept: str | None,
    what: str,
    refusal: Callable[[str], HttpError],
) -> str:
    """DICOM_JSON, JSON or DICOM_XML (for the multipart of XML parts or the XML type alone)
    from the acceptable ranges; `refusal` of a message naming `what` when none is."""
    try:
        chosen = choose(accepted, [DICOM_JSON, JSON, MULTIPART_RELATED, DICOM_XML])
    except HttpError:
        raise refusal(
            f"{what} is available as {DICOM_JSON}, {JSON} or {MULTIPART_RELATED}; "
            f'type="{DICOM_XML}", not as {accept!r}'
        ) from None
    return DICOM_XML if chosen in (MULTIPART_RELATED, DICOM_XML) else chosen


def multipart_type(media: MediaType) -> str | None:
    """The `type` parameter of a `multipart/related` range, lower case; None otherwise.

    Spaces inside a quoted value are kept: `type="  application/dicom"` names no media type.
    """
    if media.essence != "multipart/related":
        return None
    value = media.param("type")
    return value.lower() if value else None


def transfer_syntax(media: MediaType) -> str | None:
    """The `transfer-syntax` parameter (a UID or `*`), if any."""
    value = media.param("transfer-syntax")
    return value.strip() if value and value.strip() else None


def _specificity(media: MediaType) -> int:
    if media.type == WILDCARD:
        return 0
    return 1 if media.subtype == WILDCARD else 2


def _parse_parameter(piece: str, whole: str) -> tuple[str, str]:
    name, equals, value = piece.partition("=")
    name = name.strip().lower()
    if not equals or not _is_token(name):
        raise bad_request(f"Invalid parameter {piece.strip()!r} in media type {whole!r}")
    return name, _unquote(value.strip())


def _parse_quality(value: str, whole: str) -> float:
    try:
        q = float(value)
    except ValueError:
        raise bad_request(f"Invalid q-value {value!r} in {whole!r}") from None
    if not 0.0 <= q <= 1.0:
        raise bad_request(f"q-value out of [0, 1] in {whole!r}")
    return q


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on `separator`, except inside double-quoted strings (with backslash escapes)."""
    if '"' not in text:  # the common case, on every request: no quoted string to respect
        return text.split(separator)
    pieces: list[str] = []
    current: list[str] = []
    in_quotes = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif in_quotes and char == "\\":
            escaped = True
        elif char == '"':
            in_quotes = not in_quotes
        elif char == separator and not in_quotes:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return pieces


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        result: list[str] = []
        escaped = False
        for char in inner:
            if char == "\\" and not escaped:
                escaped = True
                continue
            escaped = False
            result.append(char)
        return "".join(result)
    return value


def quote_parameter(value: str) -> str:
    """A parameter value as a token when it is one, else as a quoted string."""
    if value and _is_token(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_TOKEN_SPECIALS = frozenset('()<>@,;:\\"/[]?={} \t')


def _is_token(text: str) -> bool:
    return bool(text) and all(32 < ord(c) < 127 and c not in _TOKEN_SPECIALS for c in text)


__all__ = [
    "MediaType",
    "choose",
    "matches",
    "metadata_format",
    "multipart_type",
    "parse_accept",
    "parse_media_type",
    "quality_of",
    "quote_parameter",
    "refuse_accept",
    "transfer_syntax",
]
