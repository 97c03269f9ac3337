"""The only module that imports `orthanc`: it adapts the embedded runtime to plain values.

Orthanc calls `callback(output, uri, **request)`; we turn that into a `web.Request`, run the
route's handler, and write the returned answer to `output`. Logging records go to Orthanc's log.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote_plus

import orthanc

from ..http.routes import Route
from ..http.web import Answer, MultipartResponse, Redirect, Request, Response
from .core import CoreError, ListedFile
from .loopback import DEFAULT_TIMEOUT, Loopback, LoopbackUnavailable, unusable_reason
from .shared_state import open_store
from .storage_files import StorageFiles, storage_directory
from .storage_ids import SHARED_PROPERTIES

if TYPE_CHECKING:
    from .postgres_store import PostgresStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class OrthancLogHandler(logging.Handler):
    """Sends Python log records to Orthanc's own log."""

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            orthanc.LogError(message)
        elif record.levelno >= logging.WARNING:
            orthanc.LogWarning(message)
        else:
            orthanc.LogInfo(message)


def install_logging() -> None:
    logger = logging.getLogger("orthanc_dicomweb")
    if not any(isinstance(h, OrthancLogHandler) for h in logger.handlers):
        handler = OrthancLogHandler()
        handler.setFormatter(logging.Formatter("DICOMweb: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _call_core(function: Any, uri: str, *args: Any) -> Any:
    try:
        return function(uri, *args)
    except orthanc.OrthancException as error:
        # Plugin 4.0 raises OrthancException(code, description).
        code, message = (*error.args, 0, str(error))[:2] if error.args else (0, str(error))
        raise CoreError(int(code), str(message), uri) from None


# Stores that may overlap through the loopback. A store waits on the disk for about a third of
# its time (fsync of the file and of SQLite), and overlapping stores fill those waits: on 2
# cores, 4 ranked first against 2 and 3 in two series of alternating rounds (see README).
LOOPBACK_STORES = 4


def _loopback_for(configuration: Mapping[str, Any]) -> Loopback | None:
    """A client of the core's own HTTP server for parallel stores, when that is safe."""
    reason = unusable_reason(configuration, LOOPBACK_STORES)
    if reason:
        log.warning("STOW-RS stores instances one at a time: %s", reason)
        return None
    return Loopback(
        port=int(configuration.get("HttpPort", 8042)),
        authorization=orthanc.GenerateRestApiAuthorizationToken(),
        https=bool(configuration.get("SslEnabled", False)),
        # The timeout of the HTTP requests Orthanc issues (0 would mean none: never that long).
        timeout=float(configuration.get("HttpTimeout") or DEFAULT_TIMEOUT),
    )


def _storage_files_for(configuration: Mapping[str, Any]) -> StorageFiles | None:
    directory = storage_directory(configuration, Path(orthanc.GetConfigurationPath()))
    return None if directory is None else StorageFiles(directory)


def _looked_up(lookup: Callable[[str], str], uid: str) -> str | None:
    """The Orthanc id the core's UID index gives, None if it has none or several."""
    try:
        return lookup(uid) or None
    except orthanc.OrthancException:  # plugin 4.0 raises (-1, 'Internal error') for both
        return None


# Orthanc 1.10.1 on SQLite fails a global-property call made while another database call runs
# ("SQLite: Cannot run a cached statement"; seen at startup under load, as a 500 on
# `servers?expand`): the plugin's own calls go one at a time, and a failed one is tried again.
_global_properties = threading.Lock()
_PROPERTY_ATTEMPTS = 5


def _with_retries(call: Callable[[], T]) -> T:
    for attempt in range(1, _PROPERTY_ATTEMPTS):
        try:
            with _global_properties:
                return call()
        except orthanc.OrthancException as error:
            log.info("a global property call failed (%s); trying again", error)
            time.sleep(0.02 * attempt)
    with _global_properties:
        return call()


class OrthancCore:
    """The `core.Core` protocol over the embedded runtime's REST API."""

    def __init__(self) -> None:
        self._loopback = _loopback_for(self.configuration())
        self._shared = open_store(self.configuration())
        self._files = _storage_files_for(self.configuration())

    def get(self, uri: str) -> bytes:
        return _call_core(orthanc.RestApiGet, uri)

    def post(self, uri: str, body: bytes | memoryview, after_plugins: bool = False) -> bytes:
        loopback = self._loopback
        if loopback and after_plugins and uri == "/instances" and loopback.available():
            try:
                return loopback.post(uri, body)
            except LoopbackUnavailable:
                pass  # the loopback rests a while (and says so): this store goes through the SDK
        function = orthanc.RestApiPostAfterPlugins if after_plugins else orthanc.RestApiPost
        return _call_core(function, uri, body)

    # core.ConcurrentStores: stores sent over HTTP release the GIL while the core works.
    def concurrent_stores(self) -> int:
        if self._shared is not None:
            # On PostgreSQL, overlapping stores conflict on the index's counters and are
            # retried with back-off: one at a time per request, as the official plugin does
            # (concurrent requests still overlap; measured in README, "Several Orthancs").
            return 1
        loopback = self._loopback
        return LOOPBACK_STORES if loopback and loopback.available() else 1

    def put(self, uri: str, body: bytes) -> bytes:
        return _call_core(orthanc.RestApiPut, uri, body)

    def delete(self, uri: str) -> None:
        _call_core(orthanc.RestApiDelete, uri)
        _report_own_deletion(uri)

    def configuration(self) -> dict[str, Any]:
        return json.loads(orthanc.GetConfiguration())

    # core.UidLookup and core.DirectInstanceAccess: the SDK's shortcuts past the REST router.
    def lookup_study(self, uid: str) -> str | None:
        return _looked_up(orthanc.LookupStudy, uid)

    def lookup_series(self, uid: str) -> str | None:
        return _looked_up(orthanc.LookupSeries, uid)

    def lookup_instance(self, sop_uid: str) -> str | None:
        return _looked_up(orthanc.LookupInstance, sop_uid)

    def instance_file(self, orthanc_id: str, listed: ListedFile | None = None) -> bytes:
        """The stored DICOM file, like GET /instances/{id}/file: read from the storage
        directory when it is there (the GIL released meanwhile: `storage_files`). A `listed`
        file saves the call for the attachment's information (~30 us of ~170 per instance
        retrieved)."""
        files = self._files
        if files is not None and files.enabled:
            if listed is not None and listed.uuid:
                data = files.read_listed(listed.uuid, listed.size)
            else:
                info = json.loads(self.get(f"/instances/{orthanc_id}/attachments/dicom/info"))
                data = files.read(info)
            if data is not None:
                return data
        return _call_core(orthanc.GetDicomForInstance, orthanc_id)

    # core.DicomTranscoding
    def transcode(self, dicom: bytes, syntax: str) -> bytes:
        """The file in another transfer syntax (plugin 4.0 answers any failure with (-1,
        'Internal error'): a CoreError)."""

        def serialized(_label: str) -> bytes:
            return orthanc.TranscodeDicomInstance(dicom, syntax).SerializeDicomInstance()

        return _call_core(serialized, f"TranscodeDicomInstance({syntax})")

    # Global properties of the database (plugins use ids >= 1024): the client's servers and jobs.
    # On a PostgreSQL index, the plugin's own ones live in the shared store (shared_state.py).
    def get_global_property(self, key: int) -> str:
        if self._shared is not None and key in SHARED_PROPERTIES:
            return self._shared.get_property(key)
        return _with_retries(lambda: orthanc.GetGlobalProperty(key, ""))

    def set_global_property(self, key: int, value: str) -> None:
        if self._shared is not None and key in SHARED_PROPERTIES:
            self._shared.set_property(key, value)
        else:
            _with_retries(lambda: orthanc.SetGlobalProperty(key, value))

    # shared_state.SharedStoreAccess
    def shared_store(self) -> PostgresStore | None:
        return self._shared


def _decoded_query(arguments: Mapping[str, str]) -> dict[str, str]:
    """Plugin 4.0 hands query names and values over still percent-encoded."""
    return {unquote_plus(name): unquote_plus(value) for name, value in arguments.items()}


def _request_from(uri: str, request: Mapping[str, Any]) -> Request:
    # Plugin 4.0 gives no 'get' entry for requests with a body, and the body only for POST/PUT.
    return Request(
        method=request["method"],
        path=uri,
        groups=tuple(g or "" for g in request.get("groups", ())),
        query=_decoded_query(request.get("get") or {}),
        headers=dict(request.get("headers") or {}),
        body=request.get("body") or b"",
    )


def _write(output: Any, answer: Answer) -> None:
    if isinstance(answer, Redirect):
        output.Redirect(answer.location)
        return
    for name, value in answer.headers.items():
        if name != "Allow":  # SendMethodNotAllowed writes it
            output.SetHttpHeader(name, value)
    if isinstance(answer, MultipartResponse):
        output.StartMultipartAnswer(answer.subtype, answer.part_content_type)
        for part in answer.parts:
            output.SendMultipartItem(part)
        return
    _write_response(output, answer)


def _write_response(output: Any, response: Response) -> None:
    if response.status == 200:
        output.AnswerBuffer(response.body, response.content_type)
        return
    if response.status in (204, 304):
        # No body; SendHttpStatus refuses them (measured: 500 for a 304), not this call.
        output.SendHttpStatusCode(response.status)
        return
    if response.status == 405:
        # The core reserves 405 for its dedicated call, which sends no body.
        output.SendMethodNotAllowed(response.headers.get("Allow", ""))
        return
    # SendHttpStatus takes a str body (bytes are refused by plugin 4.0).
    # A memoryview (a mapped file) comes with 200 only, but is read like bytes all the same.
    body = response.body if isinstance(response.body, str) else bytes(response.body).decode("utf-8")
    output.SetHttpHeader("Content-Type", response.content_type)
    output.SendHttpStatus(response.status, body, len(body.encode("utf-8")))


def register_routes(routes: list[Route]) -> None:
    for route in routes:
        orthanc.RegisterRestCallback(route.pattern, _callback_for(route))


class _Activity:
    """How busy this plugin's REST callbacks are, so background work can yield to them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.last_end = 0.0

    def begin(self) -> None:
        with self.lock:
            self.in_flight += 1

    def end(self) -> None:
        with self.lock:
            self.in_flight -= 1
            self.last_end = time.monotonic()

    def is_quiet(self, quiet_seconds: float) -> bool:
        with self.lock:
            return self.in_flight == 0 and time.monotonic() - self.last_end >= quiet_seconds


_activity = _Activity()


def wait_until_idle(quiet_seconds: float = 0.3, longest_seconds: float = 30.0) -> None:
    """Block a background thread until no request was served for a moment (or a limit)."""
    deadline = time.monotonic() + longest_seconds
    while not _activity.is_quiet(quiet_seconds) and time.monotonic() < deadline:
        time.sleep(0.05)


def _callback_for(route: Route) -> Any:
    def callback(output: Any, uri: str, **request: Any) -> None:
        _activity.begin()
        try:
            _write(output, route.respond(route.handlers, _request_from(uri, request)))
        finally:
            _activity.end()

    return callback


def extend_orthanc_explorer(javascript: str) -> None:
    orthanc.ExtendOrthancExplorer(javascript)


ChangeListener = Callable[[str, str, str], None]
"""listener(change, level, resource_id), e.g. ("NEW_INSTANCE", "INSTANCE", "a1b2...")."""

_change_listeners: list[ChangeListener] = []
_LEVELS = {
    orthanc.ResourceType.PATIENT: "PATIENT",
    orthanc.ResourceType.STUDY: "STUDY",
    orthanc.ResourceType.SERIES: "SERIES",
    orthanc.ResourceType.INSTANCE: "INSTANCE",
}
_CHANGES = {
    getattr(orthanc.ChangeType, name): name
    for name in dir(orthanc.ChangeType)
    if name.isupper() and not name.startswith("_")
}


def _on_change(change_type: Any, level: Any, resource_id: str) -> None:
    _notify(_CHANGES.get(change_type, str(change_type)), _LEVELS.get(level, "NONE"), resource_id)


def _notify(change: str, level: str, resource_id: str) -> None:
    for listener in _change_listeners:
        try:
            listener(change, level, resource_id)
        except Exception:  # one listener's bug must not silence the others
            logging.getLogger("orthanc_dicomweb").exception("Change listener failed")


def add_change_listener(listener: ChangeListener) -> None:
    """Be told of the core's changes; Orthanc allows one Python callback, shared here."""
    if not _change_listeners:
        orthanc.RegisterOnChangeCallback(_on_change)
    _change_listeners.append(listener)


_LEVEL_OF_PATH = {
    "patients": "PATIENT",
    "studies": "STUDY",
    "series": "SERIES",
    "instances": "INSTANCE",
}
_RESOURCE_URI = re.compile(rf"/({'|'.join(_LEVEL_OF_PATH)})/([0-9a-f-]+)")


def _report_own_deletion(uri: str) -> None:
    """Tell the change listeners of a resource this plugin deleted, before its request is
    answered: Orthanc reports it a moment later from another thread, and a client's next
    request could come first (the searches' ETag must change at once: `index_cache`)."""
    match = _RESOURCE_URI.fullmatch(uri)
    if match:
        _notify("DELETED", _LEVEL_OF_PATH[match[1]], match[2])
