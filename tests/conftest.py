"""Fixtures: live Orthancs (this plugin, and the official C++ plugin as a peer) and DICOM files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import PYDICOM_FILES, Orthanc

RUNNING: list[Orthanc] = []

TEST_FILES = {
    "ct": "CT_small.dcm",  # MONOCHROME2 signed 16-bit CT, explicit little endian
    "mr": "MR_small.dcm",
    "mr_implicit": "MR_small_implicit.dcm",
    "mr_bigendian": "MR_small_bigendian.dcm",
    "mr_rle": "MR_small_RLE.dcm",
    "mr_jpeg_ls": "MR_small_jpeg_ls_lossless.dcm",
    "jpeg2000": "JPEG2000.dcm",
    "jpeg_baseline_rgb": "SC_rgb_jpeg_dcmtk.dcm",  # YBR_FULL_422 JPEG baseline
    "rgb": "SC_rgb_small_odd.dcm",
    "ybr": "SC_ybr_full_422_uncompressed.dcm",
    "multiframe_rgb": "SC_rgb_rle_2frame.dcm",
    "multiframe_dose": "rtdose.dcm",
    "rtplan": "rtplan.dcm",
    "rtstruct": "rtstruct.dcm",
    "sr": "test-SR.dcm",
    "palette": "examples_palette.dcm",
    "jpeg_lossy": "JPEG-lossy.dcm",
}


@pytest.fixture(scope="session")
def test_files() -> dict[str, Path]:
    """Real DICOM files shipped with pydicom, by role."""
    return {role: PYDICOM_FILES / name for role, name in TEST_FILES.items()}


def _start(workdir: Path, overrides: dict[str, Any] | None, official: bool) -> Orthanc:
    orthanc = Orthanc(workdir, overrides, official=official).start()
    RUNNING.append(orthanc)
    return orthanc


def _stop(orthanc: Orthanc) -> None:
    orthanc.stop()
    if orthanc in RUNNING:
        RUNNING.remove(orthanc)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """An Orthanc with this plugin and the default configuration, shared by the session."""
    instance = _start(tmp_path_factory.mktemp("orthanc"), None, official=False)
    yield instance
    _stop(instance)


@pytest.fixture(scope="session")
def official(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """An Orthanc with Debian's official C++ DICOMweb plugin, the interop peer."""
    instance = _start(tmp_path_factory.mktemp("official"), None, official=True)
    yield instance
    _stop(instance)


@pytest.fixture
def orthanc_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Orthanc]]:
    """Starts Orthancs with a given configuration; all are stopped after the test."""
    started: list[Orthanc] = []

    def start(overrides: dict[str, Any] | None = None, official: bool = False) -> Orthanc:
        instance = _start(tmp_path_factory.mktemp("orthanc"), overrides, official)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        _stop(instance)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """On failure, attach the end of every running Orthanc's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for instance in RUNNING:
            report.sections.append((f"log of {instance.url}", instance.log_tail(40)))
