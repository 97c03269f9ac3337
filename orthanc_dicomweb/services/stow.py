"""STOW-RS "Store Instances" (PS3.18 10.5): `POST {root}studies[/{StudyInstanceUID}]`.

The multipart request is checked whole before anything is stored (a truncated or malformed
body stores nothing). Each instance is then checked from its header (identity, study of the
URL) and stored through the core's plugin-aware `/instances` route, so other plugins' filters
apply; Part 10 instances several at a time when the core can overlap stores
(`core.ConcurrentStores`). Every instance gets its own outcome in the answer, in the order of
the parts; only the answer's status sums them up.

Memory: the parts are views on the request body (no copy), and the pages of each stored part
are handed back to the OS at once, so a big request costs about the core's copy of the body
plus Python's, shrinking as it is stored.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent import futures
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from itertools import chain, islice
from typing import Any

from ..config import Configuration
from ..dicom.assembly import (
    InstanceIdentity,
    InvalidInstance,
    assemble,
    bulk_data_parts,
    bulk_data_uris,
    check_nesting,
    read_identity,
    read_json_metadata,
    read_xml_metadata,
)
from ..dicom.character_sets import utf8_charset_element
from ..dicom.json_model import encode_json
from ..dicom.values import element
from ..dicom.xml_model import to_native_xml
from ..errors import HttpError, unsupported_media_type
from ..http.bounded import check_json, check_xml
from ..http.multipart import Part, ReleasableBody, boundary_of, parse_multipart
from ..http.negotiation import choose, multipart_type, parse_accept, parse_media_type
from ..http.urls import dicomweb_base, instance_url, study_url
from ..http.web import Request, Response
from ..orthanc.core import ConcurrentStores, Core, CoreError, get_json, loads

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

SPECIFIC_CHARACTER_SET = "00080005"
RETRIEVE_URL = "00081190"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
REFERENCED_SOP_CLASS_UID = "00081150"
REFERENCED_SOP_INSTANCE_UID = "00081155"
WARNING_REASON = "00081196"
FAILURE_REASON = "00081197"


class FailureReason(IntEnum):
    """Failure Reason (0008,1197) codes of PS3.18 10.5.3 / PS3.4 Annex GG."""

    PROCESSING_FAILURE = 0x0110  # also an instance outside the study of the URL (official)
    NOT_AUTHORIZED = 0x0124
    OUT_OF_RESOURCES = 0xA700
    CANNOT_UNDERSTAND = 0xC000  # bad syntax: what makes a request that stored nothing a 400


class WarningReason(IntEnum):
    """Warning Reason (0008,1196) codes of PS3.18 10.5.3."""

    COERCION_OF_DATA_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006  # the core already had the instance and kept its copy


_CORE_FAILURES = {
    19: FailureReason.OUT_OF_RESOURCES,  # FullStorage
    15: FailureReason.CANNOT_UNDERSTAND,  # BadFileFormat
    8: FailureReason.CANNOT_UNDERSTAND,  # BadRequest
}
_CORE_STATUS_FAILURES: dict[str | None, FailureReason] = {
    "FilteredOut": FailureReason.NOT_AUTHORIZED
}


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

    @property
    def listed(self) -> bool:
        """Whether it has an item in the answer: an item references its SOP Class and SOP
        Instance UIDs (type 1, PS3.18 10.5.3), so a part lacking either is only logged."""
        return bool(self.sop_class and self.sop_instance)

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
    """Unreadable, or without the UIDs every stored instance needs: bad syntax (0xC000), as in
    the official plugin."""
    return failed(FailureReason.CANNOT_UNDERSTAND, str(error), error.sop_class, error.sop_instance)


def answer_status(outcomes: Sequence[Outcome]) -> int:
    """PS3.18 10.5.3: 200 when all are stored, 202 when some are; when none is, 400 if a part
    had bad syntax, 409 otherwise (conflicts: another study, refused by the core)."""
    stored = sum(outcome.stored for outcome in outcomes)
    if stored == len(outcomes):
        return 200
    if stored:
        return 202
    syntax = any(outcome.failure is FailureReason.CANNOT_UNDERSTAND for outcome in outcomes)
    return 400 if syntax else 409


def answer_dataset(outcomes: Sequence[Outcome], study: str | None) -> dict[str, Any]:
    """The Store Instances response module as DICOM JSON, with the official plugin's
    SpecificCharacterSet (FailedSOPSequence only if something is listed there)."""
    dataset: dict[str, Any] = {SPECIFIC_CHARACTER_SET: utf8_charset_element()}
    if study:
        dataset[RETRIEVE_URL] = element("UR", [study])
    failures = [outcome.item() for outcome in outcomes if not outcome.stored and outcome.listed]
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


def check_metadata_nesting(parts: Sequence[Part], root: str) -> None:
    """HttpError 400 (before anything is stored) when a DICOM JSON or XML part nests deeper
    than the decoders survive."""
    for part in parts:
        kind = part_type(part, root)
        if kind == DICOM_JSON:
            check_json(part.body, "A DICOM JSON part")
        elif kind == DICOM_XML:
            check_xml(part.body, "A DICOM XML part")


def too_deep(data: memoryview, identity: InstanceIdentity) -> Outcome | None:
    """The outcome of an instance whose sequences nest deeper than the core survives."""
    try:
        check_nesting(data)
    except InvalidInstance as error:
        why = str(error)
        return failed(
            FailureReason.CANNOT_UNDERSTAND, why, identity.sop_class, identity.sop_instance
        )
    return None


def at_most(outcomes: Generator[Outcome, None, None], limit: int) -> list[Outcome]:
    """The outcomes of a request; HttpError 413 beyond `limit` (DICOM JSON parts may hold many
    data sets each), which also bounds the size of the answer."""
    kept = list(islice(outcomes, limit + 1))
    if len(kept) > limit:
        outcomes.close()  # lets the stores in flight finish
        raise HttpError(413, f"More than {limit} instances in a STOW-RS request (the limit)")
    return kept


# Part 10 files above this size are stored alone: 500 MB of 8 MB parts stored two at a time
# grew the peak memory by 32 MB (two parts held in flight by the core) for no gain in speed.
ALONE_ABOVE = 2 * 2**20

Store = Callable[[], Outcome]
"""An accepted instance's store, to run now or in a worker thread."""


class InOrder:
    """Runs stores, up to `width` at once on `pool`, and gives outcomes in the parts' order,
    each with the end of its part in the body (so that part's memory can be released)."""

    def __init__(self, pool: Executor | None, width: int) -> None:
        self.pool = pool if width > 1 else None
        self.width = width
        self.pending: deque[tuple[Future[Outcome] | Outcome, int]] = deque()

    def add(self, work: Outcome | Store, end: int, size: int = 0) -> Iterator[tuple[Outcome, int]]:
        """Start `work` (an outcome already known, or the store of `size` bytes); yield what is
        finished."""
        if isinstance(work, Outcome):
            self.pending.append((work, end))
        elif self.pool is None or size > ALONE_ABOVE:
            # Overlapping big stores gains little (bytes dominate) and holds more copies.
            yield from self.rest()
            self.pending.append((work(), end))
        else:
            self.pending.append((self.pool.submit(work), end))
        while self.pending and (len(self.pending) > self.width or _done(self.pending[0][0])):
            yield self._first()

    def rest(self) -> Iterator[tuple[Outcome, int]]:
        """The outcomes still pending, waiting for each store."""
        while self.pending:
            yield self._first()

    def wait(self) -> None:
        """Let the stores started finish (when the request ends early on an error)."""
        futures.wait([work for work, _ in self.pending if isinstance(work, Future)])

    def _first(self) -> tuple[Outcome, int]:
        work, end = self.pending.popleft()
        return (work.result() if isinstance(work, Future) else work), end


def _done(work: Future[Outcome] | Outcome) -> bool:
    return not isinstance(work, Future) or work.done()


class StoreInstances:
    """The STOW-RS service."""

    def __init__(self, config: Configuration, core: Core) -> None:
        self.config = config
        self.core = core
        # One pool for all requests: the core sized what may overlap for the whole process
        # (each overlapping store may hold one of its HTTP threads).
        self.workers = self._concurrent_stores()
        self.pool = ThreadPoolExecutor(self.workers, "stow") if self.workers > 1 else None

    def _concurrent_stores(self) -> int:
        """How many stores may overlap now (the core may fall back to serial stores)."""
        return self.core.concurrent_stores() if isinstance(self.core, ConcurrentStores) else 1

    def store(self, request: Request) -> Response:
        """Store Instances, in any study or (with a UID in the path) in one study."""
        if self.config.read_only:
            raise HttpError(403, "Orthanc is in read-only mode: STOW-RS is disabled")
        # Not checked as a UID: an instance of another study is refused with a 409 answer,
        # whatever the path holds (the official plugin and its test suite do so).
        expected = request.groups[0] if request.groups else None
        answer_type = choose(parse_accept(request.header("accept")), list(ANSWER_ENCODERS))
        root, boundary = request_type(request)
        limit = self.config.stow_server_max_instances
        parts = parse_multipart(request.body, boundary, limit)
        check_metadata_nesting(parts, root)
        base = dicomweb_base(self.config, request)
        body = ReleasableBody(request.body)
        outcomes = at_most(self._store_parts(parts, root, expected, base, body), limit)
        if not outcomes:
            raise HttpError(400, "The STOW-RS request holds no instance")
        # The study's RetrieveURL when what was stored belongs to one study.
        studies = {outcome.study for outcome in outcomes if outcome.stored}
        study = studies.pop() if len(studies) == 1 else None
        dataset = answer_dataset(outcomes, study_url(base, study) if study else None)
        encode = ANSWER_ENCODERS[answer_type]
        return Response(encode(dataset), answer_type, answer_status(outcomes))

    def _store_parts(
        self, parts: list[Part], root: str, expected: str | None, base: str, body: ReleasableBody
    ) -> Generator[Outcome, None, None]:
        bulk_data = bulk_data_parts(parts) if root != DICOM else {}
        stores = InOrder(self.pool, min(self.workers, self._concurrent_stores()))
        started = (self._start(part, root, bulk_data, expected, base, stores) for part in parts)
        try:
            for outcome, end in chain(chain.from_iterable(started), stores.rest()):
                yield outcome
                if not bulk_data:  # no part is read twice: what is stored is never needed again
                    body.release_until(end)
        finally:
            stores.wait()

    def _start(
        self,
        part: Part,
        root: str,
        bulk_data: dict[str, Part],
        expected: str | None,
        base: str,
        stores: InOrder,
    ) -> Iterator[tuple[Outcome, int]]:
        """Start storing a part (Part 10 files in parallel, assembled ones one by one); yield
        the outcomes finished meanwhile."""
        kind = part_type(part, root)
        if kind == DICOM:
            store = self._part10_store(part.body, expected, base)
            yield from stores.add(store, part.end, part.body.nbytes)
        elif kind in METADATA_READERS:
            for outcome in self._store_metadata(part, kind, bulk_data, expected, base):
                yield from stores.add(outcome, part.end)
        elif root == DICOM or not bulk_data_uris(part):
            why = f"A part of type {kind!r} is no DICOM instance"
            refused = failed(FailureReason.CANNOT_UNDERSTAND, why, None, None)
            yield from stores.add(refused, part.end)

    def _part10_store(self, data: memoryview, expected: str | None, base: str) -> Outcome | Store:
        """The outcome of a refused Part 10 file, or the store of an accepted one."""
        try:
            identity = read_identity(data)
        except InvalidInstance as error:
            return invalid(error)
        refusal = self._refusal(identity, expected) or too_deep(data, identity)
        return refusal or partial(self._post, data, identity, base)

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
            view = memoryview(data)
            yield (
                self._refusal(identity, expected)
                or too_deep(view, identity)
                or self._post(view, identity, base)
            )

    @staticmethod
    def _refusal(identity: InstanceIdentity, expected: str | None) -> Outcome | None:
        """The outcome of an instance outside the study of the URL, None for the others."""
        if not expected or identity.study == expected:
            return None
        why = f"its study {identity.study} is not the study {expected} of the URL"
        return failed(
            FailureReason.PROCESSING_FAILURE,
            why,
            identity.sop_class,
            identity.sop_instance,
        )

    def _post(self, data: memoryview, identity: InstanceIdentity, base: str) -> Outcome:
        try:
            # The core takes any buffer: a memoryview avoids copying the part.
            answer = loads(self.core.post("/instances", data, after_plugins=True))
        except CoreError as error:
            reason = _CORE_FAILURES.get(error.code, FailureReason.PROCESSING_FAILURE)
            return failed(reason, error.message, identity.sop_class, identity.sop_instance)
        return self._stored(answer, identity, base)

    def _stored(self, answer: dict[str, Any], sent: InstanceIdentity, base: str) -> Outcome:
        status: str | None = answer.get("Status")
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
