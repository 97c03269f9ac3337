"""The plugin loads in a real Orthanc, follows its configuration, and identifies itself."""

from __future__ import annotations

import orthanc_dicomweb
from tests.harness import Orthanc


def test_plugin_describes_itself_like_the_official_one(orthanc: Orthanc) -> None:
    answer = orthanc.get("/plugins/dicom-web")
    assert answer.status_code == 200
    description = answer.json()
    assert description["ID"] == "dicom-web"
    assert description["Version"] == orthanc_dicomweb.__version__
    assert "DICOMweb" in description["Description"]


def test_plugins_list_has_dicom_web_beside_the_core_entries(orthanc: Orthanc) -> None:
    plugins = orthanc.get("/plugins").json()
    assert "dicom-web" in plugins
    assert "python" in plugins


def test_start_up_logs_the_roots_and_version(orthanc: Orthanc) -> None:
    log = orthanc.log_text()
    assert f"plugin {orthanc_dicomweb.__version__} serves DICOMweb at /dicom-web/" in log
    assert "WADO-URI at /wado" in log


def test_unsupported_method_gets_405_with_allow_header(orthanc: Orthanc) -> None:
    answer = orthanc.delete("/plugins/dicom-web")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET"


def test_disabled_plugin_registers_nothing(orthanc_factory) -> None:
    disabled = orthanc_factory({"DicomWeb": {"Enable": False}})
    assert "dicom-web" not in disabled.get("/plugins").json()
    assert disabled.get("/dicom-web/studies").status_code == 404
    assert "disabled by DicomWeb.Enable" in disabled.log_text()


def test_bad_configuration_is_logged_and_nothing_is_registered(orthanc_factory) -> None:
    broken = orthanc_factory({"DicomWeb": {"StudiesMetadata": "Fast"}})
    log = broken.log_text()
    assert "'DicomWeb.StudiesMetadata'" in log
    assert "Full, MainDicomTags, Extrapolate" in log
    assert broken.get("/plugins/dicom-web").status_code == 404
    assert broken.get("/dicom-web/studies").status_code == 404


def test_wrong_type_is_reported_naming_the_option(orthanc_factory) -> None:
    broken = orthanc_factory({"DicomWeb": {"EnableWado": "yes"}})
    assert "'DicomWeb.EnableWado' must be true or false" in broken.log_text()
    assert broken.get("/plugins/dicom-web").status_code == 404
