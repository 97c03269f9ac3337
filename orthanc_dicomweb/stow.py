"""STOW-RS "Store Instances" (PS3.18 10.5): `POST {root}studies[/{StudyInstanceUID}]`.

The multipart request is checked whole before anything is stored (a truncated or malformed
body stores nothing). Each instance is then checked from its header (identity, study of the
URL) and stored through the core's plugin-aware `/instances` route, so other plugins' filters
apply. Every instance gets its own outcome in the answer; only the answer's status sums them up.

Memory: the parts are views on the request body (no copy), and the pages of each stored part
are handed back to the OS at once, so a big request costs about the core's copy of the body
plus Python's, shrinking as it is stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .config import Configuration
from .core import Core, CoreError, get_json
from .dicom_assembly import (
    InstanceIdentity,
    InvalidInstance,
    NonConformantInstance,
    assemble,
    bulk_data_parts,
    bulk_data_uris,
    read_identity,
    read_json_metadata,
    read_xml_metadata,
)
from .dicom_json import element, encode_json
from .dicom_xml import to_native_xml
from .errors import HttpError, unsupported_media_type
from .multipart import Part, ReleasableBody, boundary_of, parse_multipart
from .negotiation import choose, multipart_type, parse_accept, parse_media_type
from .resources import validate_uid
from .urls import dicomweb_base, instance_url, study_url
from .web import Request, Response

log = logging.getLogger(__name__)

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"
METADATA_READERS = {DICOM_JSON: read_json_metadata, DICOM_XML: read_xml_metadata}
REQUEST_TYPES = (DICOM, DICOM_JSON, DICOM_XML)
ANSWER_ENCODERS = {
    DICOM_JSON: encode_json,
    "application/json": encode_json,
    DICOM_XML: to_native_xml,
    "application/xml": to_native_xml,
}

RETRIEVE_URL = "00081190"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
REFERENCED_SOP_CLASS_UID = "00081150"
REFERENCED_SOP_INSTANCE_UID = "00081155"
WARNING_REASON = "00081196"
FAILURE_REASON = "00081197"


class FailureReason(IntEnum):
    """Failure Reason (0008,1197) codes of PS3.18 10.5.3 / PS3.4 Annex GG."""

    PROCESSING_FAILURE = 0x0110
    NOT_AUTHORIZED = 0x0124
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    # The code the official plugin sends for an instance outside the study of the URL.
    STUDY_INSTANCE_UID_MISMATCH = 0xC122


class WarningReason(IntEnum):
    """Warning Reason (0008,1196) codes of PS3.18 10.5.3."""

    COERCION_OF_DATA_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006  # the core already had the instance and kept its copy


_CORE_FAILURES = {
    19: FailureReason.OUT_OF_RESOURCES,  # FullStorage
    15: FailureReason.CANNOT_UNDERSTAND,  # BadFileFormat
    8: FailureReason.CANNOT_UNDERSTAND,  # BadRequest
}
_CORE_STATUS_FAILURES = {"FilteredOut": FailureReason.NOT_AUTHORIZED}


@dataclass(frozen=True)
class Outcome:
    """What happened to one instance of the request."""

    sop_class: str | None
    sop_instance: str | None
    study: str | None = None
    retrieve_url: str | None = None
    failure: FailureReason | None = None
    warning: WarningReason | None = None

    @property
    def stored(self) -> bool:
        return self.failure is None

    def item(self) -> dict[str, Any]:
        """Its item in ReferencedSOPSequence or FailedSOPSequence."""
        item: dict[str, Any] = {}
        if self.sop_class:
            item[REFERENCED_SOP_CLASS_UID] = element("UI", [self.sop_class])
        if self.sop_instance:
            item[REFERENCED_SOP_INSTANCE_UID] = element("UI", [self.sop_instance])
        if self.retrieve_url:
            item[RETRIEVE_URL] = element("UR", [self.retrieve_url])
        if self.warning is not None:
            item[WARNING_REASON] = element("US", [int(self.warning)])
        if self.failure is not None:
            item[FAILURE_REASON] = element("US", [int(self.failure)])
        return item


def failed(
    reason: FailureReason, why: str, sop_class: str | None, sop_instance: str | None
) -> Outcome:
    """The outcome of a refused instance; the reason's text only goes to the log."""
    log.warning("STOW-RS: instance %s not stored (0x%04X): %s", sop_instance, reason, why)
    return Outcome(sop_class, sop_instance, failure=reason)


def invalid(error: InvalidInstance) -> Outcome:
    reason = (
        FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
        if isinstance(error, NonConformantInstance)
        else FailureReason.CANNOT_UNDERSTAND
    )
    return failed(reason, str(error), error.sop_class, error.sop_instance)


def answer_status(outcomes: Sequence[Outcome]) -> int:
    """200 when all are stored, 409 when none is, 202 in between (PS3.18 10.5.3)."""
    stored = sum(outcome.stored for outcome in outcomes)
    if stored == len(outcomes):
        return 200
    return 409 if stored == 0 else 202


def answer_dataset(outcomes: Sequence[Outcome], study: str | None) -> dict[str, Any]:
    """The Store Instances response module as DICOM JSON (FailedSOPSequence only if needed)."""
    dataset: dict[str, Any] = {}
    if study:
        dataset[RETRIEVE_URL] = element("UR", [study])
    failures = [outcome.item() for outcome in outcomes if not outcome.stored]
    if failures:
        dataset[FAILED_SOP_SEQUENCE] = element("SQ", failures)
    stored = [outcome.item() for outcome in outcomes if outcome.stored]
    dataset[REFERENCED_SOP_SEQUENCE] = element("SQ", stored)
    return dataset


def request_type(request: Request) -> tuple[str, str]:
    """The root type of a STOW-RS body and its boundary; 415 or 400 when unusable."""
    header = request.header("content-type")
    if not header:
        raise unsupported_media_type("STOW-RS needs Content-Type: multipart/related; type=...")
    try:
        media = parse_media_type(header)
    except HttpError:
        raise unsupported_media_type(f"Invalid Content-Type: {header!r}") from None
    if media.essence != "multipart/related":
        raise unsupported_media_type(
            f"STOW-RS accepts multipart/related, not {media.essence}", list(REQUEST_TYPES)
        )
    root = multipart_type(media) or DICOM  # clients often leave `type` out
    if root not in REQUEST_TYPES:
        raise unsupported_media_type(
            f"Unsupported multipart/related type {root!r}", list(REQUEST_TYPES)
        )
    return root, boundary_of(header)


def part_type(part: Part, root: str) -> str:
    """A part's own media type (`type/subtype`), or the request's root type."""
    if not part.content_type:
        return root
    if part.content_type in REQUEST_TYPES:  # the usual case, without parsing
        return part.content_type
    try:
        return parse_media_type(part.content_type).essence
    except HttpError:
        return part.content_type.strip().lower()


class StoreInstances:
    """The STOW-RS service."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.core = core

    def store(self, request: Request) -> Response:
        """Store Instances, in any study or (with a UID in the path) in one study."""
        if self.config.read_only:
            raise HttpError(403, "Orthanc is in read-only mode: STOW-RS is disabled")
        expected = validate_uid(request.groups[0], "StudyInstanceUID") if request.groups else None
        answer_type = choose(parse_accept(request.header("accept")), list(ANSWER_ENCODERS))
        root, boundary = request_type(request)
        parts = parse_multipart(request.body, boundary)
        base = dicomweb_base(self.config, request)
        body = ReleasableBody(request.body)
        outcomes = list(self._store_parts(parts, root, expected, base, body))
        if not outcomes:
            raise HttpError(400, "The STOW-RS request holds no instance")
        studies = {outcome.study for outcome in outcomes if outcome.stored}
        study = expected or (studies.pop() if len(studies) == 1 else None)
        dataset = answer_dataset(outcomes, study_url(base, study) if study else None)
        encode = ANSWER_ENCODERS[answer_type]
        return Response(encode(dataset), answer_type, answer_status(outcomes))

    def _store_parts(
        self, parts: list[Part], root: str, expected: str | None, base: str, body: ReleasableBody
    ) -> Iterator[Outcome]:
        bulk_data = bulk_data_parts(parts) if root != DICOM else {}
        for part in parts:
            kind = part_type(part, root)
            if kind == DICOM:
                yield self._store_part10(part.body, expected, base)
            elif kind in METADATA_READERS:
                yield from self._store_metadata(part, kind, bulk_data, expected, base)
            elif root == DICOM or not bulk_data_uris(part):
                why = f"A part of type {kind!r} is no DICOM instance"
                yield failed(FailureReason.CANNOT_UNDERSTAND, why, None, None)
            if not bulk_data:  # no part is read twice: what is stored is never needed again
                body.release_until(part.end)

    def _store_part10(self, data: memoryview, expected: str | None, base: str) -> Outcome:
        try:
            identity = read_identity(data)
        except InvalidInstance as error:
            return invalid(error)
        return self._store_checked(data, identity, expected, base)

    def _store_metadata(
        self, part: Part, kind: str, bulk_data: dict[str, Part], expected: str | None, base: str
    ) -> Iterator[Outcome]:
        try:
            datasets = METADATA_READERS[kind](part.body)
        except InvalidInstance as error:
            yield invalid(error)
            return
        for metadata in datasets:
            try:
                identity, data = assemble(metadata, bulk_data)
            except InvalidInstance as error:
                yield invalid(error)
                continue
            yield self._store_checked(memoryview(data), identity, expected, base)

    def _store_checked(
        self, data: memoryview, identity: InstanceIdentity, expected: str | None, base: str
    ) -> Outcome:
        if expected and identity.study != expected:
            why = f"its study {identity.study} is not the study {expected} of the URL"
            return failed(
                FailureReason.STUDY_INSTANCE_UID_MISMATCH,
                why,
                identity.sop_class,
                identity.sop_instance,
            )
        try:
            # The core takes any buffer: a memoryview avoids copying the part.
            answer = json.loads(self.core.post("/instances", data, after_plugins=True))
        except CoreError as error:
            reason = _CORE_FAILURES.get(error.code, FailureReason.PROCESSING_FAILURE)
            return failed(reason, error.message, identity.sop_class, identity.sop_instance)
        return self._stored(answer, identity, base)

    def _stored(self, answer: dict[str, Any], sent: InstanceIdentity, base: str) -> Outcome:
        status = answer.get("Status")
        if status not in ("Success", "AlreadyStored"):
            reason = _CORE_STATUS_FAILURES.get(status, FailureReason.PROCESSING_FAILURE)
            return failed(reason, f"core status {status}", sent.sop_class, sent.sop_instance)
        # The id is a hash of the UIDs: a different one means a filter changed them.
        stored = sent if answer.get("ID") == sent.orthanc_id() else self._identity(answer["ID"])
        if not stored.same_uids(sent):
            warning: WarningReason | None = WarningReason.COERCION_OF_DATA_ELEMENTS
        elif status == "AlreadyStored":
            warning = WarningReason.ELEMENTS_DISCARDED
        else:
            warning = None
        url = instance_url(base, stored.study, stored.series, stored.sop_instance)
        return Outcome(stored.sop_class, stored.sop_instance, stored.study, url, warning=warning)

    def _identity(self, orthanc_id: str) -> InstanceIdentity:
        tags = get_json(self.core, f"/instances/{orthanc_id}/tags?short")
        return InstanceIdentity(
            tags.get("0008,0016", ""),
            tags.get("0008,0018", ""),
            tags.get("0020,000d", ""),
            tags.get("0020,000e", ""),
            tags.get("0010,0020", ""),
        )
