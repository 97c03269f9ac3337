"""The registry of remote DICOMweb servers and its REST API (no Orthanc)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orthanc_dicomweb.client.servers import (
    OFFICIAL_SERVERS_PROPERTY,
    SERVERS_PROPERTY,
    ServerRegistry,
    ServersService,
    server_from_body,
)
from orthanc_dicomweb.config import Configuration, parse_servers
from orthanc_dicomweb.errors import HttpError
from orthanc_dicomweb.http.web import Request, handle
from tests.fake_core import PropertiesCore

SERVERS = {
    "plain": ["http://remote/dicom-web"],
    "secret": {
        "Url": "https://remote/dicom-web/",
        "Username": "alice",
        "Password": "s3cret",
        "CertificateFile": "client.crt",
        "CertificateKeyFile": "client.key",
        "CertificateKeyPassword": "keypass",
        "HasDelete": True,
        "Timeout": 5,
    },
}


def service(in_database: bool = False, read_only: bool = False) -> tuple[ServersService, Any]:
    core = PropertiesCore()  # only the global properties matter to the registry
    config = Configuration(
        servers=parse_servers(SERVERS), servers_in_database=in_database, read_only=read_only
    )
    return ServersService(config, ServerRegistry(config, core)), core


def call(handler: Any, method: str, *groups: str, body: Any = None, query: Any = None) -> Any:
    raw = json.dumps(body).encode() if body is not None else b""
    request = Request(method, "/dicom-web/servers", groups, query or {}, {}, raw)
    return handle({method: handler}, request)


def test_list_and_expand_never_show_passwords() -> None:
    api, _ = service()
    assert json.loads(call(api.list_servers, "GET").body) == ["plain", "secret"]
    expanded = call(api.list_servers, "GET", query={"expand": ""}).body
    assert "s3cret" not in str(expanded)
    assert "keypass" not in str(expanded)
    secret = json.loads(expanded)["secret"]
    assert secret["Username"] == "alice"
    assert secret["Url"] == "https://remote/dicom-web/"
    assert secret["Timeout"] == 5


def test_operations_depend_on_has_delete() -> None:
    api, _ = service()
    assert "delete" not in json.loads(call(api.get_server, "GET", "plain").body)
    operations = json.loads(call(api.get_server, "GET", "secret").body)
    assert set(operations) == {"get", "qido", "stow", "retrieve", "wado", "delete"}
    assert call(api.get_server, "GET", "nope").status == 404


@pytest.mark.parametrize("in_database", [False, True])
def test_put_and_delete(in_database: bool) -> None:
    api, core = service(in_database)
    answer = call(api.put_server, "PUT", "new", body={"Url": "http://other/dw", "HasDelete": "1"})
    assert answer.status == 200
    assert json.loads(call(api.list_servers, "GET").body) == ["new", "plain", "secret"]
    assert "delete" in json.loads(call(api.get_server, "GET", "new").body)
    assert call(api.delete_server, "DELETE", "plain").status == 200
    assert call(api.delete_server, "DELETE", "plain").status == 404
    assert json.loads(call(api.list_servers, "GET").body) == ["new", "secret"]
    if in_database:
        saved = json.loads(core.get_global_property(SERVERS_PROPERTY))
        assert set(saved) == {"new", "secret"}
        assert saved["secret"]["Password"] == "s3cret"  # kept for use, never shown


def test_servers_in_database_are_shared_by_registries() -> None:
    config = Configuration(servers=parse_servers(SERVERS), servers_in_database=True)
    core = PropertiesCore()  # only the global properties matter to the registry
    ServerRegistry(config, core).put(server_from_body("x", b'["http://x/"]'))
    assert set(ServerRegistry(config, core).all()) == {"plain", "secret", "x"}
    fresh = Configuration(servers_in_database=True)  # restart with no configured server
    assert set(ServerRegistry(fresh, core).all()) == {"plain", "secret", "x"}


@pytest.mark.parametrize(
    "body",
    [
        {"Username": "no url"},
        {"Url": 3},
        {"Url": "http://x/", "HasDelete": "perhaps"},
        {"Url": "http://x/", "Timeout": "soon"},
        {"Url": "http://x/", "HttpHeaders": {"A": 1}},
        ["http://x/", "user-without-password"],
        "http://x/",
        None,
    ],
)
def test_bad_definitions_are_400(body: Any) -> None:
    api, _ = service()
    answer = call(api.put_server, "PUT", "bad", body=body)
    assert answer.status == 400
    assert json.loads(answer.body)["Message"]


def test_not_json_is_400() -> None:
    with pytest.raises(HttpError) as raised:
        server_from_body("x", b"{nope")
    assert raised.value.status == 400


def test_read_only_refuses_changes() -> None:
    api, _ = service(read_only=True)
    assert call(api.put_server, "PUT", "x", body=["http://x/"]).status == 403
    assert call(api.delete_server, "DELETE", "plain").status == 403


def test_expand_shows_header_names_and_no_credentials() -> None:
    config = Configuration(
        servers=parse_servers(
            {
                "pacs": {
                    "Url": "http://admin:secret@pacs/dicom-web/",
                    "HttpHeaders": {"Authorization": "Bearer T0KEN", "X-Api-Key": "K3Y"},
                }
            }
        )
    )
    api = ServersService(config, ServerRegistry(config, PropertiesCore()))
    expanded = json.loads(call(api.list_servers, "GET", query={"expand": ""}).body)
    assert expanded["pacs"]["HttpHeaders"] == ["Authorization", "X-Api-Key"]
    assert expanded["pacs"]["Url"] == "http://***@pacs/dicom-web/"
    for secret in ("T0KEN", "K3Y", "secret"):
        assert secret not in json.dumps(expanded)


OFFICIAL_SAVED = {  # global property 5468 as the official plugin 1.7 writes it
    "x": {
        "HasDelete": "1",
        "HttpHeaders": {"X-Api-Key": "K"},
        "Password": "secret",
        "Pkcs11": False,
        "Timeout": 0,
        "Url": "http://h/dw/",
        "Username": "bob",
    },
    "y": {"HttpHeaders": {}, "Password": "b", "Pkcs11": False, "Timeout": 0, "Url": "http://h2/"},
}


def test_the_official_plugins_saved_servers_are_adopted_once() -> None:
    config = Configuration(servers=parse_servers(SERVERS), servers_in_database=True)
    core = PropertiesCore()  # only the global properties matter to the registry
    core.set_global_property(OFFICIAL_SERVERS_PROPERTY, json.dumps(OFFICIAL_SAVED))
    registry = ServerRegistry(config, core)
    servers = registry.all()
    assert set(servers) == {"x", "y"}  # as the official plugin had them
    assert servers["x"].has_delete and servers["x"].password == "secret"
    assert servers["x"].http_headers == {"X-Api-Key": "K"}
    registry.remove("x")
    registry.remove("y")
    assert registry.all() == {}  # removing all of them does not bring them back
    assert ServerRegistry(config, core).all() == {}  # nor does a restart
    assert json.loads(core.get_global_property(OFFICIAL_SERVERS_PROPERTY)) == OFFICIAL_SAVED


def test_our_saved_servers_win_over_the_official_ones() -> None:
    config = Configuration(servers_in_database=True)
    core = PropertiesCore()  # only the global properties matter to the registry
    ServerRegistry(config, core).put(server_from_body("ours", b'["http://ours/"]'))
    core.set_global_property(OFFICIAL_SERVERS_PROPERTY, json.dumps(OFFICIAL_SAVED))
    assert set(ServerRegistry(config, core).all()) == {"ours"}


@pytest.mark.parametrize("in_database", [False, True])
def test_post_changes_some_fields_keeps_the_others_and_renames(in_database: bool) -> None:
    api, _ = service(in_database=in_database)
    answer = call(api.update_server, "POST", "secret", body={"HasDelete": False, "Name": "moved"})
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["Name"] == "moved"
    assert "s3cret" not in str(answer.body)
    moved = api.registry.find("moved")
    assert (moved.username, moved.password, moved.has_delete) == ("alice", "s3cret", False)
    assert (moved.certificate_key_password, moved.timeout) == ("keypass", 5)
    assert "secret" not in api.registry.all()
    call(api.update_server, "POST", "moved", body={"Username": None, "Password": None})
    cleared = api.registry.find("moved")
    assert (cleared.username, cleared.password) == (None, None)


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("plain", {"Name": "secret"}, 409),
        ("plain", {"Name": ""}, 400),
        ("plain", {"Url": "remote/dicom-web/"}, 400),
        ("plain", [1], 400),
        ("missing", {}, 404),
    ],
)
def test_wrong_changes_change_nothing(name: str, body: Any, status: int) -> None:
    api, _ = service()
    before = api.registry.all()
    assert call(api.update_server, "POST", name, body=body).status == status
    assert api.registry.all() == before
    assert call(api.update_server, "POST", "plain", body={}).status == 200


def test_read_only_refuses_post_too() -> None:
    api, _ = service(read_only=True)
    assert call(api.update_server, "POST", "plain", body={"HasDelete": True}).status == 403
