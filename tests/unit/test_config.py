"""Every configuration option: its default, its parsing, and the errors it reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orthanc_dicomweb.config import (
    Configuration,
    ConfigurationError,
    normalize_root,
    parse_configuration,
    parse_server,
)

REPO = Path(__file__).resolve().parents[2]


def dicomweb(**options: object) -> Configuration:
    return parse_configuration({"DicomWeb": options})


def test_defaults_match_the_official_plugin() -> None:
    config = parse_configuration({})
    assert config == Configuration()
    assert config.enable and config.enable_wado
    assert config.root == "/dicom-web/"
    assert config.wado_root_path == "/wado"
    assert config.studies_metadata == config.series_metadata == "Full"
    assert config.other_binary_mode == "BulkDataURI"
    assert config.enable_metadata_cache
    assert not config.qido_case_sensitive
    assert config.servers == ()
    assert config.default_encoding == "Latin1"


def test_shipped_orthanc_json_is_valid_and_has_every_option_at_its_default() -> None:
    shipped = json.loads((REPO / "orthanc.json").read_text())
    assert shipped["HttpPort"] == 8042
    assert shipped["RemoteAccessAllowed"] is False
    assert parse_configuration(shipped) == Configuration()
    documented = {
        "Enable",
        "Root",
        "EnableWado",
        "WadoRoot",
        "Ssl",
        "QidoCaseSensitive",
        "PublicRoot",
        "StudiesMetadata",
        "SeriesMetadata",
        "StudiesMetadataExtrapolatedTags",
        "SeriesMetadataExtrapolatedTags",
        "OtherBinaryMode",
        "EnableMetadataCache",
        "MetadataWorkerThreadsCount",
        "WadoRsLoaderThreadsCount",
        "EnablePerformanceLogs",
        "StowMaxInstances",
        "StowMaxSize",
        "StowServerMaxInstances",
        "ServersInDatabase",
        "Servers",
        "EnableDelete",
        "CacheMaxAge",
        "Cors",
    }
    assert documented <= set(shipped["DicomWeb"])


@pytest.mark.parametrize("value", ["dicom-web", "/dicom-web", "dicom-web/", "/dicom-web/"])
def test_root_works_with_or_without_slashes(value: str) -> None:
    assert dicomweb(Root=value).root == "/dicom-web/"


@pytest.mark.parametrize("value", ["wado", "/wado", "/wado/"])
def test_wado_root_works_with_or_without_slashes(value: str) -> None:
    assert dicomweb(WadoRoot=value).wado_root_path == "/wado"


def test_nested_and_empty_roots() -> None:
    assert normalize_root("/a/b/") == "/a/b/"
    assert normalize_root("") == "/"


@pytest.mark.parametrize(
    ("option", "value", "attribute"),
    [
        ("Enable", False, "enable"),
        ("EnableWado", False, "enable_wado"),
        ("Ssl", True, "ssl"),
        ("QidoCaseSensitive", True, "qido_case_sensitive"),
        ("EnableMetadataCache", False, "enable_metadata_cache"),
        ("EnablePerformanceLogs", True, "enable_performance_logs"),
        ("ServersInDatabase", True, "servers_in_database"),
        ("MetadataWorkerThreadsCount", 8, "metadata_worker_threads_count"),
        ("WadoRsLoaderThreadsCount", 2, "wado_rs_loader_threads_count"),
        ("StowMaxInstances", 0, "stow_max_instances"),
        ("StowMaxSize", 100, "stow_max_size"),
        ("Host", "pacs.example", "host"),
        ("StudiesMetadata", "MainDicomTags", "studies_metadata"),
        ("SeriesMetadata", "Extrapolate", "series_metadata"),
        ("OtherBinaryMode", "InlineBinary", "other_binary_mode"),
        ("OtherBinaryMode", "ArrayOfValues", "other_binary_mode"),
        ("QidoIndexCacheSize", 120_000, "qido_index_cache_size"),
        ("QidoIndexCacheSize", 0, "qido_index_cache_size"),
    ],
)
def test_each_option_takes_effect(option: str, value: object, attribute: str) -> None:
    assert getattr(dicomweb(**{option: value}), attribute) == value


def test_extrapolated_tag_lists() -> None:
    config = dicomweb(
        StudiesMetadataExtrapolatedTags=["AcquisitionDate"],
        SeriesMetadataExtrapolatedTags=["Rows", "Columns"],
    )
    assert config.studies_metadata_extrapolated_tags == ("AcquisitionDate",)
    assert config.series_metadata_extrapolated_tags == ("Rows", "Columns")


def test_public_root_is_normalized_and_empty_means_unset() -> None:
    assert dicomweb(PublicRoot="/public/dicom-web").public_root == "/public/dicom-web/"
    assert dicomweb(PublicRoot="").public_root is None


def test_qido_case_sensitivity_defaults_to_the_core_option() -> None:
    assert parse_configuration({"CaseSensitivePN": True}).qido_case_sensitive
    explicit = parse_configuration(
        {"CaseSensitivePN": True, "DicomWeb": {"QidoCaseSensitive": False}}
    )
    assert not explicit.qido_case_sensitive


def test_global_options() -> None:
    config = parse_configuration(
        {
            "DefaultEncoding": "Utf8",
            "ReadOnly": True,
            "HttpProxy": "http://proxy:3128",
            "HttpTimeout": 5,
            "HttpsVerifyPeers": False,
            "HttpsCACertificates": "/etc/ssl/certs/ca-certificates.crt",
            "JobsHistorySize": 3,
            "SaveJobs": False,
            "ConcurrentJobs": 4,
        }
    )
    assert config.default_encoding == "Utf8"
    assert config.read_only
    assert config.http_proxy == "http://proxy:3128"
    assert config.http_timeout == 5
    assert not config.https_verify_peers
    assert config.https_ca_certificates.endswith(".crt")
    assert config.jobs_history_size == 3
    assert not config.save_jobs
    assert config.concurrent_jobs == 4


def test_unknown_enumeration_value_names_the_option_and_the_accepted_values() -> None:
    with pytest.raises(ConfigurationError) as raised:
        dicomweb(StudiesMetadata="Fast")
    message = str(raised.value)
    assert "'DicomWeb.StudiesMetadata'" in message
    assert "'Fast'" in message
    assert "Full, MainDicomTags, Extrapolate" in message


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("Enable", "yes"),
        ("Root", 42),
        ("EnableWado", 1),
        ("Ssl", None),
        ("QidoCaseSensitive", "true"),
        ("StowMaxInstances", True),
        ("StowMaxInstances", -1),
        ("MetadataWorkerThreadsCount", 0),
        ("OtherBinaryMode", "Base64"),
        ("SeriesMetadataExtrapolatedTags", "Rows"),
        ("Servers", []),
        ("QidoIndexCacheSize", -1),
        ("QidoIndexCacheSize", "20000"),
    ],
)
def test_wrong_types_are_refused_naming_the_option(option: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as raised:
        dicomweb(**{option: value})
    assert f"DicomWeb.{option}" in str(raised.value)


def test_wrong_global_option_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'DefaultEncoding'"):
        parse_configuration({"DefaultEncoding": "Klingon"})
    with pytest.raises(ConfigurationError, match="'DicomWeb'"):
        parse_configuration({"DicomWeb": []})


def test_server_array_forms() -> None:
    server = parse_server("a", ["http://remote/dicom-web"])
    assert server.url == "http://remote/dicom-web/"
    assert server.username is None
    with_user = parse_server("b", ["http://remote/dicom-web/", "alice", "secret"])
    assert (with_user.username, with_user.password) == ("alice", "secret")
    with pytest.raises(ConfigurationError):
        parse_server("c", ["http://remote/", "alice"])
    with pytest.raises(ConfigurationError):
        parse_server("d", [])


def test_server_object_form_with_every_field() -> None:
    server = parse_server(
        "full",
        {
            "Url": "https://remote/dicom-web/",
            "Username": "alice",
            "Password": "secret",
            "HttpHeaders": {"Authorization": "Bearer x"},
            "HasDelete": True,
            "ChunkedTransfers": False,
            "HasWadoRsUniversalTransferSyntax": False,
            "CertificateFile": "client.crt",
            "CertificateKeyFile": "client.key",
            "CertificateKeyPassword": "pw",
            "Pkcs11": False,
            "Timeout": 30,
        },
    )
    assert server.http_headers == {"Authorization": "Bearer x"}
    assert server.has_delete and not server.chunked_transfers
    assert not server.has_wado_rs_universal_transfer_syntax
    assert server.certificate_key_password == "pw"
    assert server.timeout == 30
    public = server.to_json()
    assert public["Password"] is None and public["CertificateKeyPassword"] is None
    assert public["HttpHeaders"] == ["Authorization"]  # names only: values are secrets too
    assert "Bearer x" not in str(public)
    saved = server.to_json(with_password=True)
    assert saved["Password"] == "secret"
    assert parse_server("full", saved) == server  # what is saved reads back the same


def test_server_json_is_the_official_plugins() -> None:
    """`GET {root}servers?expand` and the saved form, as the official plugin writes them."""
    definition = {
        "Url": "http://bob:pw@remote/dicom-web/",
        "Username": "bob",
        "Password": "password",
        "HttpHeaders": {"Hello": "World"},
        "UserProperty": "Test",
        "HasDelete": True,
        "Timeout": 66,
    }
    server = parse_server("hello", definition)
    assert server.to_json() == {
        "Url": "http://***@remote/dicom-web/",
        "Username": "bob",
        "Password": None,
        "Pkcs11": False,
        "HttpHeaders": ["Hello"],
        "UserProperty": "Test",
        "HasDelete": "1",
        "Timeout": 66,
    }
    official_saved = {  # global property 5468 of the official plugin 1.7
        "HasDelete": "1",
        "HttpHeaders": {"Authorization": "Bearer TOKEN"},
        "Password": "secret",
        "Pkcs11": False,
        "Timeout": 0,
        "Url": "http://h/dw/",
        "UserProperty": "up",
        "Username": "bob",
    }
    adopted = parse_server("x", official_saved)
    assert adopted.has_delete and adopted.timeout is None
    assert adopted.http_headers == {"Authorization": "Bearer TOKEN"}
    assert adopted.to_json(with_password=True) == official_saved


def test_user_properties_are_strings() -> None:
    with pytest.raises(ConfigurationError):
        parse_server("s", {"Url": "http://r/", "Nested": {"a": 1}})
    server = parse_server("s", {"Url": "http://r/", "Flag": False, "Count": 3})
    assert server.user_properties == {"Flag": "0", "Count": "3"}


def test_server_flags_accept_the_strings_orthanc_accepts() -> None:
    server = parse_server("s", {"Url": "http://r/", "HasDelete": "true", "ChunkedTransfers": "0"})
    assert server.has_delete and not server.chunked_transfers


@pytest.mark.parametrize(
    "definition",
    [
        {},
        {"Url": 3},
        {"Url": "http://r/", "Timeout": "10"},
        {"Url": "http://r/", "HttpHeaders": []},
        {"Url": "pacs:8042/dicom-web/"},
        {"Url": "ftp://pacs/dicom-web/"},
        {"Url": "http:///dicom-web/"},
        ["www.pacs.org/dicom-web/"],
        "http://pacs/dicom-web/",
        42,
    ],
)
def test_bad_server_definitions_are_refused(definition: object) -> None:
    with pytest.raises(ConfigurationError, match=r"DicomWeb\.Servers\.bad"):
        parse_server("bad", definition)


def test_servers_are_found_by_name() -> None:
    config = dicomweb(Servers={"one": ["http://one/"], "two": {"Url": "http://two/"}})
    assert config.server("two").url == "http://two/"
    assert config.server("three") is None


def test_a_bad_server_is_left_out_with_a_log_line_and_the_others_stay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    servers = {"plain": "http://plain/dicom-web/", "good": ["http://good/"], "nourl": ["pacs/"]}
    config = dicomweb(Servers=servers)
    assert [server.name for server in config.servers] == ["good"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    assert "DicomWeb.Servers.plain" in errors[0] and "this DICOMweb server is ignored" in errors[0]
    assert '["http://pacs:8042/dicom-web/", "username", "password"]' in errors[0]
    assert "DicomWeb.Servers.nourl" in errors[1] and "http:// or https://" in errors[1]


def test_stow_server_max_instances() -> None:
    assert dicomweb().stow_server_max_instances == 10_000
    assert dicomweb(StowServerMaxInstances=5).stow_server_max_instances == 5
    with pytest.raises(ConfigurationError, match="StowServerMaxInstances"):
        dicomweb(StowServerMaxInstances=0)
