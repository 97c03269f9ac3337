"""Server-side DELETE, the `accept` query parameter, ETags / 304s, ZIP retrieve and CORS
headers, against a live Orthanc with these features enabled."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pydicom
import pytest
from pydicom.uid import generate_uid

from orthanc_dicomweb.orthanc.storage_ids import SERIES_METADATA
from tests.harness import Orthanc
from tests.helpers import derived, parts_of, store, wait_for

ALLOWED = "http://viewer.allowed.test"
IMPLICIT_LE = "1.2.840.10008.1.2"
CONFIG = {
    "OverwriteInstances": True,
    "DicomWeb": {"EnableDelete": True, "CacheMaxAge": 60, "Cors": {"AllowedOrigins": [ALLOWED]}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    orthanc = Orthanc(tmp_path_factory.mktemp("http-features"), CONFIG).start()
    yield orthanc
    orthanc.stop()


def new_study(server: Orthanc, source: Path, count: int = 2) -> dict[str, Any]:
    """A study of one series of `count` instances; their UIDs."""
    study, series = generate_uid(), generate_uid()
    files = [derived(source, study, series) for _ in range(count)]
    store(server, files)
    sops = [pydicom.dcmread(io.BytesIO(f), stop_before_pixels=True).SOPInstanceUID for f in files]
    return {"study": study, "series": series, "sops": sops, "files": files}


def instance_path(s: dict[str, Any], index: int = 0) -> str:
    return f"/dicom-web/studies/{s['study']}/series/{s['series']}/instances/{s['sops'][index]}"


# --- DELETE ------------------------------------------------------------------------------


def test_delete_is_refused_by_default(orthanc: Orthanc) -> None:
    answer = orthanc.delete(f"/dicom-web/studies/{generate_uid()}")
    assert answer.status_code == 405
    assert "DELETE" not in answer.headers.get("Allow", "")


def test_delete_instance_series_and_study(server: Orthanc, test_files: dict[str, Path]) -> None:
    s = new_study(server, test_files["ct"], count=3)
    series_metadata = f"/dicom-web/studies/{s['study']}/series/{s['series']}/metadata"
    assert len(server.get(series_metadata).json()) == 3  # the series' cache entry is written
    series_id = server.post("/tools/lookup", data=s["series"]).json()[0]["ID"]
    entry = f"/series/{series_id}/attachments/{SERIES_METADATA}/md5"
    before = server.get(entry).text
    assert server.delete(instance_path(s)).status_code == 204
    assert server.get(instance_path(s)).status_code == 404
    wait_for(lambda: server.get(entry).text != before)  # rebuilt after the answer
    assert len(server.get(series_metadata).json()) == 2
    assert server.delete(instance_path(s)).status_code == 404
    series = f"/dicom-web/studies/{s['study']}/series/{s['series']}"
    assert (
        server.delete(f"/dicom-web/studies/{generate_uid()}/series/{s['series']}").status_code
        == 404
    )
    assert server.delete(series).status_code == 204
    assert server.get(series_metadata).status_code == 404
    other = new_study(server, test_files["mr"], count=1)
    assert server.delete(f"/dicom-web/studies/{other['study']}").status_code == 204
    assert server.get(f"/dicom-web/studies/{other['study']}/metadata").status_code == 404


def test_delete_unknown_and_malformed(server: Orthanc) -> None:
    assert server.delete(f"/dicom-web/studies/{generate_uid()}").status_code == 404
    assert server.delete("/dicom-web/studies/not-a-uid").status_code == 400


# --- accept query parameter -----------------------------------------------------------------


def test_accept_parameter_overrides_the_header(
    server: Orthanc, test_files: dict[str, Path]
) -> None:
    s = new_study(server, test_files["ct"], count=1)
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={IMPLICIT_LE}'
    answer = server.get(
        instance_path(s), params={"accept": accept}, headers={"Accept": "text/html"}
    )
    [dicom] = parts_of(answer)
    assert pydicom.dcmread(io.BytesIO(dicom)).file_meta.TransferSyntaxUID == IMPLICIT_LE
    xml = 'multipart/related; type="application/dicom+xml"'
    answer = server.get(instance_path(s) + "/metadata", params={"accept": xml})
    assert b"NativeDicomModel" in parts_of(answer)[0]
    found = server.get(
        "/dicom-web/studies",
        params={"accept": "application/dicom+json", "StudyInstanceUID": s["study"]},
    )
    assert found.status_code == 200 and len(found.json()) == 1


@pytest.mark.parametrize("value", ["", "garbage", "text/html; q=x", "a/b/c"])
def test_accept_parameter_that_does_not_parse_is_a_400(server: Orthanc, value: str) -> None:
    answer = server.get("/dicom-web/studies", params={"accept": value})
    assert answer.status_code == 400, answer.text


# --- HTTP caching ------------------------------------------------------------------------------


def test_instance_answers_have_strong_etags_and_304(
    server: Orthanc, test_files: dict[str, Path]
) -> None:
    s = new_study(server, test_files["ct"], count=1)
    base = instance_path(s)
    for suffix in ("", "/frames/1", "/rendered", "/thumbnail", "/metadata", "/frames/1/rendered"):
        answer = server.get(base + suffix)
        assert answer.status_code == 200, (suffix, answer.text)
        etag = answer.headers["ETag"]
        assert etag.startswith('"'), suffix
        assert answer.headers["Cache-Control"] == "private, max-age=60, immutable"
        again = server.get(base + suffix, headers={"If-None-Match": etag})
        assert again.status_code == 304, suffix
        assert again.headers["ETag"] == etag and not again.content
    assert server.get(base, headers={"If-None-Match": "*"}).status_code == 304
    elsewhere = base.replace(s["study"], generate_uid())  # right instance, wrong study
    assert server.get(elsewhere, headers={"If-None-Match": "*"}).status_code == 404
    assert server.get(elsewhere, headers={"If-None-Match": etag}).status_code == 404
    other = server.get(
        base, headers={"Accept": "multipart/related; type=application/dicom; transfer-syntax=*"}
    )
    assert other.headers["ETag"] != server.get(base).headers["ETag"]


def test_several_frames_stay_a_stream_without_etag(
    server: Orthanc, test_files: dict[str, Path]
) -> None:
    s = new_study(server, test_files["multiframe_rgb"], count=1)
    answer = server.get(instance_path(s) + "/frames/1,2")
    assert len(parts_of(answer)) == 2
    assert "ETag" not in answer.headers
    assert "ETag" in server.get(instance_path(s) + "/frames/2").headers


def test_one_part_answers_keep_their_etag_with_and_without_gzip(
    server: Orthanc, test_files: dict[str, Path]
) -> None:
    """The core sends a lone part as one buffer, gzipped when the client accepts it, whether the
    plugin streamed it or not (so it does for the official plugin): the part is buffered here
    with its ETag (`caching.with_headers`)."""
    s = new_study(server, test_files["ct"], count=1)
    bodies = []
    for encoding in ("gzip", "identity"):
        answer = server.get(instance_path(s), headers={"Accept-Encoding": encoding})
        assert answer.headers["ETag"].startswith('"')
        assert answer.headers.get("Content-Encoding") == ("gzip" if encoding == "gzip" else None)
        bodies.append(parts_of(answer))
    assert bodies[0] == bodies[1] and len(bodies[0]) == 1


def test_instance_stored_again_gets_a_new_etag(
    server: Orthanc, test_files: dict[str, Path]
) -> None:
    s = new_study(server, test_files["ct"], count=1)
    before = server.get(instance_path(s)).headers["ETag"]
    dataset = pydicom.dcmread(io.BytesIO(s["files"][0]))
    dataset.PatientName = "Stored^Again"
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    store(server, [out.getvalue()])  # OverwriteInstances: same SOP Instance UID, new file
    answer = server.get(instance_path(s), headers={"If-None-Match": before})
    assert answer.status_code == 200
    assert answer.headers["ETag"] != before


def test_search_and_metadata_etags_change_with_the_database(
    server: Orthanc, test_files: dict[str, Path]
) -> None:
    s = new_study(server, test_files["ct"], count=1)
    uris = [
        f"/dicom-web/studies?StudyInstanceUID={s['study']}",
        f"/dicom-web/studies/{s['study']}/instances",
        f"/dicom-web/studies/{s['study']}/metadata",
        f"/dicom-web/studies/{s['study']}/series/{s['series']}/metadata",
    ]
    tags = {}
    for uri in uris:
        answer = server.get(uri)
        assert answer.status_code == 200, uri
        tags[uri] = answer.headers["ETag"]
        assert tags[uri].startswith('W/"')
        assert server.get(uri, headers={"If-None-Match": tags[uri]}).status_code == 304, uri
    store(server, [derived(test_files["ct"], s["study"], s["series"])])  # a new instance
    for uri in uris:
        answer = server.get(uri, headers={"If-None-Match": tags[uri]})
        assert answer.status_code == 200, uri
        assert answer.headers["ETag"] != tags[uri]
        tags[uri] = answer.headers["ETag"]
    new_study(server, test_files["mr"], count=1)  # elsewhere: only the whole-database search
    for uri in uris:
        status = server.get(uri, headers={"If-None-Match": tags[uri]}).status_code
        assert status == (200 if uri.startswith("/dicom-web/studies?") else 304), uri
        tags[uri] = server.get(uri).headers["ETag"]
    assert server.delete(instance_path(s)).status_code == 204  # an instance removed
    for uri in uris:
        assert server.get(uri, headers={"If-None-Match": tags[uri]}).status_code == 200, uri
    unknown = f"/dicom-web/studies/{generate_uid()}/series"
    assert server.get(unknown, headers={"If-None-Match": tags[uris[0]]}).status_code == 404


def test_a_deletion_through_the_core_changes_the_search_etag(
    server: Orthanc, test_files: dict[str, Path]
) -> None:
    """Orthanc 1.10.1 logs no deletion: the core's change callback tells the plugin a moment
    after the deletion (one through DICOMweb DELETE changes the tag before its answer)."""
    s = new_study(server, test_files["ct"], count=2)
    uri = f"/dicom-web/studies?StudyInstanceUID={s['study']}"
    etag = server.get(uri).headers["ETag"]
    found = server.post("/tools/lookup", data=s["sops"][0]).json()
    assert server.delete(f"/instances/{found[0]['ID']}").status_code == 200
    wait_for(lambda: server.get(uri, headers={"If-None-Match": etag}).status_code == 200, 3)
    assert server.get(uri).json()[0]["00201208"]["Value"] == [1]


@pytest.mark.parametrize("value", ["abc", '"unterminated', "W/abc", '"a" "b"'])
def test_malformed_if_none_match_is_a_400(
    server: Orthanc, test_files: dict[str, Path], value: str
) -> None:
    answer = server.get("/dicom-web/studies", headers={"If-None-Match": value})
    assert answer.status_code == 400, answer.text
    assert "If-None-Match" in answer.json()["Message"]


# --- ZIP -----------------------------------------------------------------------------------------


def test_zip_retrieve_of_a_study_and_a_series(server: Orthanc, test_files: dict[str, Path]) -> None:
    s = new_study(server, test_files["ct"], count=3)
    study = f"/dicom-web/studies/{s['study']}"
    answer = server.get(study, headers={"Accept": "application/zip"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    names = sorted(archive.namelist())
    assert names == sorted(f"{s['series']}/{sop}.dcm" for sop in s["sops"])
    for name in names:
        assert pydicom.dcmread(io.BytesIO(archive.read(name))).SeriesInstanceUID == s["series"]
    accept = f"application/zip; transfer-syntax={IMPLICIT_LE}"
    answer = server.get(f"{study}/series/{s['series']}", params={"accept": accept})
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    syntaxes = {
        pydicom.dcmread(io.BytesIO(archive.read(n))).file_meta.TransferSyntaxUID
        for n in archive.namelist()
    }
    assert syntaxes == {IMPLICIT_LE}
    assert (
        server.get(study, headers={"Accept": "application/zip; transfer-syntax=1.2.3"}).status_code
        == 400
    )
    # multipart when it ranks first
    answer = server.get(
        study,
        headers={"Accept": "multipart/related; type=application/dicom, application/zip; q=0.5"},
    )
    assert len(parts_of(answer)) == 3


# --- CORS ----------------------------------------------------------------------------------------


def test_cors_headers_on_answers_errors_and_multipart(
    server: Orthanc, test_files: dict[str, Path]
) -> None:
    s = new_study(server, test_files["ct"], count=1)
    origin = {"Origin": ALLOWED}
    for uri, status in (
        ("/dicom-web/studies", 200),
        (f"/dicom-web/studies/{generate_uid()}/metadata", 404),
        (instance_path(s) + "/frames/1", 200),  # multipart
        (f"/dicom-web/studies/{s['study']}", 200),  # multipart of a study
    ):
        answer = server.get(uri, headers=origin)
        assert answer.status_code == status, uri
        assert answer.headers["Access-Control-Allow-Origin"] == ALLOWED, uri
        assert "ETag" in answer.headers["Access-Control-Expose-Headers"]
        assert "Origin" in answer.headers["Vary"]
    assert len(parts_of(server.get(f"/dicom-web/studies/{s['study']}", headers=origin))) == 1
    refused = server.get("/dicom-web/studies", headers={"Origin": "http://evil.test"})
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_cors_preflight_passed_on_by_a_proxy(server: Orthanc) -> None:
    def preflight(method: str, origin: str = ALLOWED, headers: str = "content-type") -> Any:
        return server.get(
            "/dicom-web/studies",
            headers={
                "X-Cors-Preflight": "1",
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": headers,
            },
        )

    answer = preflight("POST")
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert answer.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert "Content-Type" in answer.headers["Access-Control-Allow-Headers"]
    assert answer.headers["Access-Control-Max-Age"] == "600"
    assert preflight("PATCH").status_code == 405
    assert preflight("BAD METHOD").status_code == 400
    assert preflight("POST", origin="http://evil.test").status_code == 403
    assert preflight("POST", headers="x-secret").status_code == 403


def test_cors_options_that_disagree_leave_the_plugin_unconfigured(
    orthanc_factory: Any,
) -> None:
    cors = {"AllowedOrigins": ["*"], "AllowCredentials": True}
    orthanc = orthanc_factory({"DicomWeb": {"Cors": cors}})
    assert orthanc.get("/dicom-web/studies").status_code == 404
    assert "AllowCredentials" in orthanc.log_text()


def test_the_official_plugins_client_deletes_through_it(
    server: Orthanc, orthanc_factory: Any, test_files: dict[str, Path]
) -> None:
    s = new_study(server, test_files["mr"], count=1)
    definition = {"Url": server.url + "/dicom-web/", "HasDelete": True}
    official = orthanc_factory({"DicomWeb": {"Servers": {"python": definition}}}, official=True)
    asked = {"Level": "Study", "StudyInstanceUID": s["study"]}
    answer = official.post("/dicom-web/servers/python/delete", json=asked)
    assert answer.status_code == 200, answer.text
    assert server.get(f"/dicom-web/studies/{s['study']}/metadata").status_code == 404


# --- capabilities -------------------------------------------------------------------------


def test_capabilities_list_the_routes_served(server: Orthanc, orthanc: Orthanc) -> None:
    answer = server.get("/dicom-web/", headers={"Accept": "application/vnd.sun.wadl+xml"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/vnd.sun.wadl+xml"
    root = ElementTree.fromstring(answer.content)
    ns = {"w": "http://wadl.dev.java.net/2009/02"}
    methods = {
        resource.get("path"): {m.get("name") for m in resource.findall("w:method", ns)}
        for resource in root.iterfind(".//w:resource", ns)
    }
    assert methods["studies"] == {"GET", "POST"}
    assert methods["studies/{study}"] == {"GET", "POST", "DELETE"}
    assert "studies/{study}/series/{series}/instances/{instance}/frames/{frames}" in methods
    assert b'mediaType="application/zip"' in answer.content
    default = orthanc.get("/dicom-web/", params={"accept": "application/vnd.sun.wadl+xml"})
    assert b'name="DELETE"' not in default.content.split(b"servers/")[0]
    assert orthanc.get("/dicom-web/", headers={"Accept": "application/json"}).status_code == 406
    assert orthanc.get("/dicom-web", params={"accept": "application/json"}).status_code == 406
