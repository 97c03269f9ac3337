"""runtime.OrthancCore's choice between HTTP loopback and SDK stores, with a fake `orthanc`."""

from __future__ import annotations

import importlib
import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from orthanc_dicomweb.orthanc.core import ConcurrentStores


def fake_orthanc(configuration: dict[str, Any], sdk_calls: list[tuple[str, Any]]) -> Any:
    """The few names runtime.py reads at import and when storing."""

    def post_after_plugins(uri: str, body: Any) -> bytes:
        sdk_calls.append((uri, bytes(body)))
        return b'{"Status": "Success"}'

    return types.SimpleNamespace(
        OrthancException=type("OrthancException", (Exception,), {}),
        ResourceType=types.SimpleNamespace(PATIENT=0, STUDY=1, SERIES=2, INSTANCE=3),
        ChangeType=types.SimpleNamespace(NEW_INSTANCE=0),
        GetConfiguration=lambda: json.dumps(configuration),
        GetConfigurationPath=lambda: "/nonexistent/orthanc.json",
        GenerateRestApiAuthorizationToken=lambda: "Bearer token",
        RestApiPostAfterPlugins=post_after_plugins,
        RestApiPost=post_after_plugins,
    )


@pytest.fixture
def runtime_with(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """runtime.py imported against a fake `orthanc` built from a configuration."""
    sdk_calls: list[tuple[str, Any]] = []

    def load(configuration: dict[str, Any]) -> tuple[Any, list[tuple[str, Any]]]:
        monkeypatch.setitem(sys.modules, "orthanc", fake_orthanc(configuration, sdk_calls))
        monkeypatch.delitem(sys.modules, "orthanc_dicomweb.orthanc.runtime", raising=False)
        return importlib.import_module("orthanc_dicomweb.orthanc.runtime"), sdk_calls

    yield load
    sys.modules.pop("orthanc_dicomweb.orthanc.runtime", None)


def test_stores_overlap_through_the_loopback(runtime_with: Any) -> None:
    runtime, _ = runtime_with({"HttpPort": 8042})
    core = runtime.OrthancCore()
    assert isinstance(core, ConcurrentStores)
    assert core.concurrent_stores() == runtime.LOOPBACK_STORES > 1


def test_too_few_http_threads_store_one_at_a_time(runtime_with: Any) -> None:
    runtime, sdk_calls = runtime_with({"HttpThreadsCount": 3})
    core = runtime.OrthancCore()
    assert core.concurrent_stores() == 1
    core.post("/instances", b"DICM", after_plugins=True)
    assert sdk_calls == [("/instances", b"DICM")]


def test_a_failing_loopback_rests_then_is_tried_again(
    runtime_with: Any, caplog: pytest.LogCaptureFixture
) -> None:
    runtime, sdk_calls = runtime_with({"HttpPort": 9})  # nothing listens there
    core = runtime.OrthancCore()
    now = [0.0]
    core._loopback._clock = lambda: now[0]
    for body in (b"1", b"2"):  # the first fails over to the SDK, the second goes there at once
        assert core.post("/instances", body, after_plugins=True) == b'{"Status": "Success"}'
    assert sdk_calls == [("/instances", b"1"), ("/instances", b"2")]
    assert core.concurrent_stores() == 1
    assert caplog.text.count("through the SDK (one at a time) for 30 s") == 1
    now[0] += 31  # was: one at a time until Orthanc restarts
    assert core.concurrent_stores() == runtime.LOOPBACK_STORES
    core._loopback.post = lambda uri, body: b'{"Status": "Loopback"}'
    assert core.post("/instances", b"3", after_plugins=True) == b'{"Status": "Loopback"}'


def test_only_plugin_aware_stores_use_the_loopback(runtime_with: Any) -> None:
    runtime, sdk_calls = runtime_with({"HttpPort": 8042})
    core = runtime.OrthancCore()
    core._loopback.post = lambda uri, body: pytest.fail("the loopback must not be used")
    core.post("/instances", b"DICM")  # other plugins must not see it: SDK only
    core.post("/tools/find", b"{}", after_plugins=True)
    assert [uri for uri, _ in sdk_calls] == ["/instances", "/tools/find"]


def test_an_error_answer_with_a_memoryview_body_is_sent_as_text(runtime_with: Any) -> None:
    runtime, _ = runtime_with({"HttpPort": 8042})
    from orthanc_dicomweb.http.web import Response

    calls: list[tuple[str, tuple[Any, ...]]] = []
    output = types.SimpleNamespace(
        SetHttpHeader=lambda *args: calls.append(("SetHttpHeader", args)),
        SendHttpStatus=lambda *args: calls.append(("SendHttpStatus", args)),
    )
    runtime._write_response(output, Response(memoryview(b"gone"), "text/plain", 404))
    assert calls == [
        ("SetHttpHeader", ("Content-Type", "text/plain")),
        ("SendHttpStatus", (404, "gone", 4)),
    ]
