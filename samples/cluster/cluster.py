"""Several Orthancs with this plugin on one PostgreSQL index, behind nginx, on loopback.

Usage (one command starts everything in a temporary folder, Ctrl-C stops it)::

    .venv/bin/python samples/cluster/cluster.py --nodes 3          # this plugin
    .venv/bin/python samples/cluster/cluster.py --nodes 2 --official  # the official plugin

It prints the balanced URL (nginx) and each node's URL. What it sets up, as a site would:

- one PostgreSQL server (Debian's ``postgresql``), holding the index of every node and the
  plugin's shared state (servers, jobs, cache tokens: tables ``dicomweb_*``);
- N Orthancs with Debian's ``orthanc-postgresql`` index plugin (``Lock: false``, so that
  several Orthancs may open the index) and one storage folder shared by all of them;
- nginx balancing them (least connections), with bodies of any size passed through.

Tests and benchmarks use `Cluster` from Python (`tests/integration/test_cluster.py`,
`benchmarks/cluster.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PLUGINS = Path("/usr/share/orthanc/plugins")
POSTGRESQL_BIN = Path("/usr/lib/postgresql/15/bin")
INDEX_PLUGIN = PLUGINS / "libOrthancPostgreSQLIndex.so"
NGINX = Path("/usr/sbin/nginx")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_software() -> list[str]:
    """What this set-up needs and this machine lacks (Debian packages)."""
    needed = {
        "orthanc": shutil.which("Orthanc"),
        "orthanc-python": (PLUGINS / "libOrthancPython.so").exists(),
        "orthanc-postgresql": INDEX_PLUGIN.exists(),
        "postgresql": (POSTGRESQL_BIN / "initdb").exists(),
        "nginx": NGINX.exists(),
    }
    return [package for package, found in needed.items() if not found]


def wait_for(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited early while starting {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class Postgres:
    """A throw-away PostgreSQL server on a free port, in a temporary folder of its own (the
    server runs as `postgres` when we are root: it could not enter a folder private to root);
    `stop` removes it."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="dicomweb-postgres-"))
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> Postgres:
        if os.geteuid() == 0:
            shutil.chown(self.folder, self.user)
        data = str(self.folder / "data")
        self._run(str(POSTGRESQL_BIN / "initdb"), "-D", data, "-A", "trust", "-U", self.user)
        # Durability is kept (fsync on): measurements must see what a site would.
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        options += " -c max_connections=200"
        log = str(self.folder / "postgres.log")
        self._run(
            str(POSTGRESQL_BIN / "pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start"
        )
        return self

    def stop(self) -> None:
        data = str(self.folder / "data")
        if (self.folder / "data" / "postmaster.pid").exists():
            self._run(str(POSTGRESQL_BIN / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def section(self) -> dict[str, Any]:
        """The `PostgreSQL` configuration section every node gets."""
        return {
            "EnableIndex": True,
            "EnableStorage": False,
            "Host": "127.0.0.1",
            "Port": self.port,
            "Database": "postgres",
            "Username": self.user,
            "Password": "",
            "Lock": False,  # several Orthancs on one index
            "IndexConnectionsCount": 1,
        }


class Node:
    """One Orthanc of the cluster, with its own configuration and log file."""

    def __init__(self, workdir: Path, overrides: dict[str, Any], official: bool = False) -> None:
        self.workdir = workdir
        self.official = official
        self.config = overrides
        self.port = int(overrides["HttpPort"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "orthanc.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Node:
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
        try:
            wait_for(self.url + "/system", timeout, self.process)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{self.log_tail()}") from None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the node dies as in a power cut, leaving its jobs and leases behind."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Cluster:
    """PostgreSQL, `nodes` Orthancs sharing it and one storage folder, nginx in front."""

    def __init__(
        self,
        folder: Path,
        nodes: int = 2,
        official: bool = False,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.folder = folder
        self.official = official
        self.postgres = Postgres()
        self.nodes = [self._node(i, overrides or {}) for i in range(nodes)]
        self.nginx_port = free_port()
        self.url = f"http://127.0.0.1:{self.nginx_port}"
        self._nginx: subprocess.Popen[bytes] | None = None

    def _node(self, number: int, overrides: dict[str, Any]) -> Node:
        port = free_port()
        plugin = "libOrthancDicomWeb.so" if self.official else "libOrthancPython.so"
        config: dict[str, Any] = {
            "Name": f"node{number + 1}",
            "HttpPort": port,
            "DicomPort": free_port(),
            "StorageDirectory": str(self.folder / "storage"),  # one folder for all nodes
            "IndexDirectory": str(self.folder / f"node{number + 1}"),
            "RemoteAccessAllowed": True,
            "AuthenticationEnabled": False,
            "StableAge": 1,
            "Plugins": [str(PLUGINS / plugin), str(INDEX_PLUGIN)],
            "DicomWeb": {"Enable": True, "Servers": {}},
        }
        if not self.official:
            config["PythonScript"] = str(REPO / "orthanc_dicomweb_plugin.py")
        config.update(overrides)
        return Node(self.folder / f"node{number + 1}", config, self.official)

    def start(self) -> Cluster:
        """Everything started, or nothing left running (a node that does not come up must
        not leave PostgreSQL and the other nodes behind)."""
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_all(self) -> None:
        self.postgres.start()
        for node in self.nodes:
            node.config["PostgreSQL"] = self.postgres.section()
        # The first node creates the index schema alone; the others then open it together.
        self.nodes[0].start()
        for node in self.nodes[1:]:
            node.start(wait=False)
        for node in self.nodes[1:]:
            node.wait_until_ready()
        self._start_nginx()

    def _start_nginx(self) -> None:
        folder = self.folder / "nginx"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "nginx.conf"
        config.write_text(nginx_configuration(folder, self.nginx_port, self.nodes))
        self._nginx = subprocess.Popen(
            [str(NGINX), "-c", str(config), "-p", str(folder), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "error.log", "ab"),  # noqa: SIM115 (closed with the process)
        )
        wait_for(self.url + "/system", 30, self._nginx)

    def stop(self) -> None:
        if self._nginx is not None and self._nginx.poll() is None:
            self._nginx.terminate()
            self._nginx.wait()
        for node in self.nodes:
            node.stop()
        self.postgres.stop()


def nginx_configuration(folder: Path, port: int, nodes: list[Node]) -> str:
    """nginx in front of the nodes: least connections, no body size limit, no buffering of
    answers (WADO-RS streams)."""
    servers = "\n".join(f"        server 127.0.0.1:{node.port};" for node in nodes)
    return f"""
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    upstream orthancs {{
        least_conn;
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            proxy_pass http://orthancs;
            proxy_http_version 1.1;
            # One connection per request: a node closes idle kept-alive connections after
            # about a second, and a POST nginx sends on one being closed gets a 502.
            proxy_set_header Connection close;
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 600s;
        }}
    }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--official", action="store_true", help="the official C++ plugin")
    parser.add_argument("--folder", type=Path, help="where to keep everything (default: temp)")
    arguments = parser.parse_args()
    missing = missing_software()
    if missing:
        sys.exit(f"Install the Debian packages first: {' '.join(missing)}")
    folder = arguments.folder or Path(tempfile.mkdtemp(prefix="dicomweb-cluster-"))
    cluster = Cluster(folder, arguments.nodes, arguments.official)
    try:
        cluster.start()
        print(f"Balanced (nginx): {cluster.url}/dicom-web/")
        for node in cluster.nodes:
            print(f"{node.config['Name']}: {node.url}/ (log: {node.log_path})")
        print(f"Everything is in {folder}; Ctrl-C stops it.")
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
