"""Start and stop real Orthanc processes for the tests (free ports, temporary storage)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
PLUGINS = Path("/usr/share/orthanc/plugins")
PYTHON_PLUGIN = PLUGINS / "libOrthancPython.so"
OFFICIAL_PLUGIN = PLUGINS / "libOrthancDicomWeb.so"
ENTRY_SCRIPT = REPO / "orthanc_dicomweb_plugin.py"
PYDICOM_FILES = Path(__import__("pydicom").__file__).parent / "data" / "test_files"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class Orthanc:
    """One Orthanc process with its own configuration, storage and log file."""

    def __init__(
        self, workdir: Path, overrides: dict[str, Any] | None = None, official: bool = False
    ) -> None:
        self.workdir = workdir
        self.official = official
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = deep_merge(self._base_config(), overrides or {})
        self.log_path = workdir / "orthanc.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()

    def _base_config(self) -> dict[str, Any]:
        storage = str(self.workdir / "storage")
        config: dict[str, Any] = {
            "Name": "official" if self.official else "python",
            "HttpPort": self.port,
            "DicomPort": free_port(),
            "DicomAet": "OFFICIAL" if self.official else "PYTHON",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "RemoteAccessAllowed": True,
            "AuthenticationEnabled": False,
            "HttpTimeout": 20,
            "StableAge": 1,
            "DicomWeb": {"Enable": True, "Servers": {}},
        }
        if self.official:
            config["Plugins"] = [str(OFFICIAL_PLUGIN)]
        else:
            config["Plugins"] = [str(PYTHON_PLUGIN)]
            config["PythonScript"] = str(ENTRY_SCRIPT)
        return config

    def start(self, wait: bool = True) -> Orthanc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "config.json"
        config_path.write_text(json.dumps(self.config, indent=2))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"]])
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["Orthanc", "--verbose", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
            )
        if wait:
            self.wait_until_ready()
        return self

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited early:\n{self.log_tail()}")
            try:
                if self.session.get(self.url + "/system", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> Orthanc:
        self.stop()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config["HttpPort"] = self.port
        self.config["DicomPort"] = free_port()
        return self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # --- REST helpers -------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=60, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=120, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.put(self.url + path, timeout=60, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(self.url + path, timeout=60, **kwargs)

    def upload(self, paths: Iterable[Path]) -> list[dict[str, Any]]:
        """Store DICOM files through the core's own REST API; returns the core's answers."""
        answers = []
        for path in paths:
            response = self.post("/instances", data=Path(path).read_bytes())
            response.raise_for_status()
            answers.append(response.json())
        return answers

    def clear(self) -> None:
        """Delete every patient, so a test starts from an empty Orthanc."""
        for patient in self.get("/patients").json():
            self.delete(f"/patients/{patient}")


def orthanc_available(official: bool = False) -> bool:
    plugin = OFFICIAL_PLUGIN if official else PYTHON_PLUGIN
    return shutil.which("Orthanc") is not None and plugin.exists()
