"""The plugin's configuration: the `DicomWeb` section and the global options it reads.

Read once at start-up into one immutable `Configuration`; a wrong value raises
`ConfigurationError` naming the option, and the plugin then registers nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, overload
from urllib.parse import urlsplit

from .dicom.bulk_data_policy import OTHER_BINARY_MODES
from .http.cors import DEFAULT_HEADERS, DEFAULT_MAX_AGE, DEFAULT_METHODS, CorsOptions

log = logging.getLogger(__name__)

METADATA_MODES = ("Full", "MainDicomTags", "Extrapolate")
EXAMPLE_URL = "http://pacs:8042/dicom-web/"
SERVER_FORMS = (
    f'["{EXAMPLE_URL}"], ["{EXAMPLE_URL}", "username", "password"] '
    f'or an object {{"Url": "{EXAMPLE_URL}", ...}}'
)
"""The accepted forms of a server definition, told when one is wrong."""
DEFAULT_ENCODINGS = (
    "Ascii",
    "Utf8",
    "Latin1",
    "Latin2",
    "Latin3",
    "Latin4",
    "Latin5",
    "Cyrillic",
    "Windows1251",
    "Arabic",
    "Greek",
    "Hebrew",
    "Thai",
    "Japanese",
    "Chinese",
    "JapaneseKanji",
    "Korean",
    "SimplifiedChinese",
)


class ConfigurationError(ValueError):
    """A configuration option has a wrong type or value."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"DicomWeb configuration: option {option!r} {message}")
        self.option = option


@dataclass(frozen=True)
class ServerDefinition:
    """A remote DICOMweb server (`DicomWeb.Servers`, array or object form)."""

    name: str
    url: str
    username: str | None = None
    password: str | None = None
    http_headers: Mapping[str, str] = field(default_factory=dict)
    has_delete: bool = False
    chunked_transfers: bool = True
    has_wado_rs_universal_transfer_syntax: bool = True
    certificate_file: str | None = None
    certificate_key_file: str | None = None
    certificate_key_password: str | None = None
    pkcs11: bool = False
    timeout: int | None = None
    user_properties: Mapping[str, str] = field(default_factory=dict)
    """Other members of the object form (e.g. "UserProperty"), kept and shown as strings."""

    @property
    def public_url(self) -> str:
        """The URL as it may be shown: without the credentials it may hold."""
        return redact_url(self.url)

    def to_json(self, with_password: bool = False) -> dict[str, Any]:
        """The object form as the official plugin saves it (`with_password`), or as it shows
        it: passwords as null, the URL without credentials, the names of the HTTP headers
        only (their values are often secrets too: `Authorization`, `X-Api-Key`)."""
        value: dict[str, Any] = {
            "Url": self.url if with_password else self.public_url,
            "Pkcs11": self.pkcs11,
            "Timeout": self.timeout or 0,  # 0: the global HttpTimeout
            "HttpHeaders": dict(self.http_headers) if with_password else list(self.http_headers),
        }
        secrets = {
            "Password": self.password,
            "CertificateKeyPassword": self.certificate_key_password,
        }
        if self.username is not None:
            value |= {"Username": self.username, "Password": secrets["Password"]}
        if self.certificate_file is not None:
            value |= {
                "CertificateFile": self.certificate_file,
                "CertificateKeyFile": self.certificate_key_file,
                "CertificateKeyPassword": secrets["CertificateKeyPassword"],
            }
        if not with_password:
            value |= {name: None for name in secrets if name in value}
        return value | self._flags() | dict(self.user_properties)

    def _flags(self) -> dict[str, str]:
        """The plugin's flags that differ from their defaults, as the official plugin's "1"/"0"."""
        flags = {
            "HasDelete": (self.has_delete, False),
            "ChunkedTransfers": (self.chunked_transfers, True),
            "HasWadoRsUniversalTransferSyntax": (self.has_wado_rs_universal_transfer_syntax, True),
        }
        return {
            name: "1" if value else "0"
            for name, (value, default) in flags.items()
            if value != default
        }


def redact_url(url: str) -> str:
    """`http://user:password@host/` shown as `http://***@host/`."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


@dataclass(frozen=True)
class Configuration:
    """Every option of the official plugin, with its default."""

    enable: bool = True
    root: str = "/dicom-web/"
    enable_wado: bool = True
    wado_root: str = "/wado"
    ssl: bool = False
    qido_case_sensitive: bool = False
    host: str | None = None
    public_root: str | None = None
    studies_metadata: str = "Full"
    series_metadata: str = "Full"
    studies_metadata_extrapolated_tags: tuple[str, ...] = ()
    series_metadata_extrapolated_tags: tuple[str, ...] = ()
    other_binary_mode: str = "BulkDataURI"
    enable_metadata_cache: bool = True
    # Accepted and checked for compatibility with the official plugin, not used: the core's
    # calls hold the GIL in plugin 4.0, so more metadata or loader threads would not go faster.
    metadata_worker_threads_count: int = 4
    wado_rs_loader_threads_count: int = 0
    enable_performance_logs: bool = False
    stow_max_instances: int = 10
    stow_max_size: int = 10
    stow_server_max_instances: int = 10_000
    servers: tuple[ServerDefinition, ...] = ()
    servers_in_database: bool = False
    # Global options of the Orthanc configuration that the plugin follows.
    default_encoding: str = "Latin1"
    read_only: bool = False
    http_proxy: str | None = None
    http_timeout: int = 60
    https_verify_peers: bool = True
    https_ca_certificates: str | None = None
    jobs_history_size: int = 10
    save_jobs: bool = True
    concurrent_jobs: int = 2
    # Features beyond the official plugin (README: "HTTP features").
    enable_delete: bool = False
    cors: CorsOptions = field(default_factory=CorsOptions)
    cache_max_age: int = 0
    # Index entries QIDO-RS keeps between searches (a study and its series are two; 0: none).
    qido_index_cache_size: int = 20_000

    @property
    def wado_root_path(self) -> str:
        """WADO-URI root without trailing slash, e.g. `/wado`."""
        return self.wado_root.rstrip("/") or "/"

    def server(self, name: str) -> ServerDefinition | None:
        return next((s for s in self.servers if s.name == name), None)


def normalize_root(value: str) -> str:
    """`dicom-web`, `/dicom-web` and `/dicom-web/` all become `/dicom-web/`."""
    stripped = value.strip().strip("/")
    return f"/{stripped}/" if stripped else "/"


class _Reader:
    """Typed access to one JSON object, naming the option in every error."""

    def __init__(self, section: Mapping[str, Any], prefix: str) -> None:
        if not isinstance(section, Mapping):
            raise ConfigurationError(prefix.rstrip("."), "must be a JSON object")
        self.section = section
        self.prefix = prefix

    def _value(self, name: str, kinds: tuple[type, ...], kind_name: str, default: Any) -> Any:
        value = self.section.get(name, default)
        if value is None and default is None:
            return None
        # bool is a subclass of int: refuse true/false where a number is wanted.
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise ConfigurationError(self.prefix + name, f"must be {kind_name}, not {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return self._value(name, (bool,), "true or false", default)

    # A default that is not None is also what a missing option gives: no None then.
    @overload
    def string(self, name: str, default: str) -> str: ...
    @overload
    def string(self, name: str, default: None) -> str | None: ...
    def string(self, name: str, default: str | None) -> str | None:
        return self._value(name, (str,), "a string", default)

    @overload
    def integer(self, name: str, default: int, minimum: int = 0) -> int: ...
    @overload
    def integer(self, name: str, default: None, minimum: int = 0) -> int | None: ...
    def integer(self, name: str, default: int | None, minimum: int = 0) -> int | None:
        value = self._value(name, (int,), "an integer", default)
        if value is not None and value < minimum:
            raise ConfigurationError(self.prefix + name, f"must be >= {minimum}, not {value}")
        return value

    def choice(self, name: str, default: str, accepted: tuple[str, ...]) -> str:
        value = self._value(name, (str,), "a string", default)
        if value not in accepted:
            raise ConfigurationError(
                self.prefix + name,
                f"has unknown value {value!r}; accepted values: {', '.join(accepted)}",
            )
        return value

    def string_list(self, name: str) -> tuple[str, ...]:
        value = self.section.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigurationError(self.prefix + name, "must be a list of strings")
        return tuple(value)

    def string_map(self, name: str) -> dict[str, str]:
        value = self.section.get(name, {})
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigurationError(self.prefix + name, "must be an object of strings")
        return dict(value)


def parse_server(name: str, value: Any, option: str = "DicomWeb.Servers") -> ServerDefinition:
    """One server definition, in the array form `[url, user, password]` or the object form."""
    where = f"{option}.{name}"
    if isinstance(value, list):
        return _parse_server_array(name, value, where)
    if not isinstance(value, Mapping):
        raise ConfigurationError(where, f"must be {SERVER_FORMS}, not {value!r}")
    reader = _Reader(value, where + ".")
    url = reader.string("Url", None)
    if not url:
        raise ConfigurationError(where + ".Url", "is missing")
    return ServerDefinition(
        name=name,
        url=_server_url(url, where + ".Url"),
        username=reader.string("Username", None),
        password=reader.string("Password", None),
        http_headers=reader.string_map("HttpHeaders"),
        has_delete=_lenient_boolean(reader, "HasDelete", False),
        chunked_transfers=_lenient_boolean(reader, "ChunkedTransfers", True),
        has_wado_rs_universal_transfer_syntax=_lenient_boolean(
            reader, "HasWadoRsUniversalTransferSyntax", True
        ),
        certificate_file=reader.string("CertificateFile", None),
        certificate_key_file=reader.string("CertificateKeyFile", None),
        certificate_key_password=reader.string("CertificateKeyPassword", None),
        pkcs11=reader.boolean("Pkcs11", False),
        timeout=reader.integer("Timeout", None) or None,  # the official plugin saves 0 for none
        user_properties=_user_properties(value, where),
    )


RESERVED_SERVER_KEYS = frozenset(
    {
        "Url",
        "Username",
        "Password",
        "HttpHeaders",
        "HasDelete",
        "ChunkedTransfers",
        "HasWadoRsUniversalTransferSyntax",
        "CertificateFile",
        "CertificateKeyFile",
        "CertificateKeyPassword",
        "Pkcs11",
        "Timeout",
    }
)


def _user_properties(value: Mapping[str, Any], where: str) -> dict[str, str]:
    """The other members of a server definition, which Orthanc keeps as strings."""
    properties = {}
    for key, item in value.items():
        if key in RESERVED_SERVER_KEYS:
            continue
        if isinstance(item, dict | list) or item is None:
            raise ConfigurationError(f"{where}.{key}", "must be a string (a user property)")
        properties[key] = ("1" if item else "0") if isinstance(item, bool) else str(item)
    return properties


def _lenient_boolean(reader: _Reader, name: str, default: bool) -> bool:
    """Orthanc accepts "true"/"false" strings for these flags (the web app sends them)."""
    value = reader.section.get(name, default)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return reader.boolean(name, default)


def _parse_server_array(name: str, value: list[Any], where: str) -> ServerDefinition:
    if not 1 <= len(value) <= 3 or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(where, f"must be {SERVER_FORMS}, not {value!r}")
    if len(value) == 2:
        raise ConfigurationError(where, "gives a username without a password")
    url, username, password = ([*value, None, None])[:3]
    return ServerDefinition(name, _server_url(url, where), username, password)


def _server_url(url: str, where: str) -> str:
    """An absolute http(s) URL, with a trailing slash; refused here rather than at first use."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            where, f"must be an http:// or https:// URL (e.g. {EXAMPLE_URL}), not {url!r}"
        )
    url = url.strip()
    return url if url.endswith("/") else url + "/"


def parse_servers(value: Any) -> tuple[ServerDefinition, ...]:
    """The valid servers; a wrong entry is logged and left out, as the official plugin does,
    so that one typo does not take the other servers (and DICOMweb itself) down."""
    if not isinstance(value, Mapping):
        raise ConfigurationError("DicomWeb.Servers", "must be a JSON object")
    servers = []
    for name, definition in value.items():
        try:
            servers.append(parse_server(name, definition))
        except ConfigurationError as error:
            log.error("%s; this DICOMweb server is ignored", error)
    return tuple(servers)


def parse_cors(value: Any) -> CorsOptions:
    """`DicomWeb.Cors`; no `AllowedOrigins` (the default) leaves CORS off."""
    reader = _Reader(value, "DicomWeb.Cors.")
    try:
        return CorsOptions(
            allowed_origins=reader.string_list("AllowedOrigins"),
            allowed_methods=reader.string_list("AllowedMethods") or DEFAULT_METHODS,
            allowed_headers=reader.string_list("AllowedHeaders") or DEFAULT_HEADERS,
            allow_credentials=reader.boolean("AllowCredentials", False),
            max_age=reader.integer("MaxAge", DEFAULT_MAX_AGE),
        )
    except ConfigurationError:
        raise
    except ValueError as error:  # the options disagree with each other
        raise ConfigurationError("DicomWeb.Cors", str(error)) from None


def parse_configuration(orthanc: Mapping[str, Any]) -> Configuration:
    """Build the configuration from the whole Orthanc configuration (a JSON object)."""
    top = _Reader(orthanc, "")
    section = _Reader(orthanc.get("DicomWeb", {}), "DicomWeb.")
    case_sensitive_pn = top.boolean("CaseSensitivePN", False)
    public_root = section.string("PublicRoot", None)
    return Configuration(
        enable=section.boolean("Enable", True),
        root=normalize_root(section.string("Root", "/dicom-web/")),
        enable_wado=section.boolean("EnableWado", True),
        wado_root=normalize_root(section.string("WadoRoot", "/wado")).rstrip("/") or "/",
        ssl=section.boolean("Ssl", False),
        qido_case_sensitive=section.boolean("QidoCaseSensitive", case_sensitive_pn),
        host=section.string("Host", None),
        public_root=normalize_root(public_root) if public_root else None,
        studies_metadata=section.choice("StudiesMetadata", "Full", METADATA_MODES),
        series_metadata=section.choice("SeriesMetadata", "Full", METADATA_MODES),
        studies_metadata_extrapolated_tags=section.string_list("StudiesMetadataExtrapolatedTags"),
        series_metadata_extrapolated_tags=section.string_list("SeriesMetadataExtrapolatedTags"),
        other_binary_mode=section.choice("OtherBinaryMode", "BulkDataURI", OTHER_BINARY_MODES),
        enable_metadata_cache=section.boolean("EnableMetadataCache", True),
        metadata_worker_threads_count=section.integer("MetadataWorkerThreadsCount", 4, 1),
        wado_rs_loader_threads_count=section.integer("WadoRsLoaderThreadsCount", 0),
        enable_performance_logs=section.boolean("EnablePerformanceLogs", False),
        stow_max_instances=section.integer("StowMaxInstances", 10),
        stow_max_size=section.integer("StowMaxSize", 10),
        stow_server_max_instances=section.integer("StowServerMaxInstances", 10_000, 1),
        servers=parse_servers(orthanc.get("DicomWeb", {}).get("Servers", {})),
        servers_in_database=section.boolean("ServersInDatabase", False),
        default_encoding=top.choice("DefaultEncoding", "Latin1", DEFAULT_ENCODINGS),
        read_only=top.boolean("ReadOnly", False),
        http_proxy=top.string("HttpProxy", None) or None,
        http_timeout=top.integer("HttpTimeout", 60),
        https_verify_peers=top.boolean("HttpsVerifyPeers", True),
        https_ca_certificates=top.string("HttpsCACertificates", None) or None,
        jobs_history_size=top.integer("JobsHistorySize", 10),
        save_jobs=top.boolean("SaveJobs", True),
        concurrent_jobs=top.integer("ConcurrentJobs", 2, 1),
        enable_delete=section.boolean("EnableDelete", False),
        cors=parse_cors(orthanc.get("DicomWeb", {}).get("Cors", {})),
        cache_max_age=section.integer("CacheMaxAge", 0),
        qido_index_cache_size=section.integer("QidoIndexCacheSize", 20_000),
    )
