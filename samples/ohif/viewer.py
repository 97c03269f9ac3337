"""The OHIF Viewer v3 in front of Orthanc's DICOMweb, served by Debian's nginx on one origin.

Fetches the viewer as its authors build it (the npm registry's ``@ohif/app`` carries it in
``dist/``), keeps it in a cache folder outside git, writes an nginx configuration from
``nginx-site.conf`` and ``app-config.js`` beside this file, and runs nginx::

    python3 samples/ohif/viewer.py --orthanc 127.0.0.1:8042 --listen 127.0.0.1:3000

Standard library only, so that it runs with any Python 3.9+; used by scripts/run-viewer.sh,
the browser tests and the benchmarks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SITE_TEMPLATE = HERE / "nginx-site.conf"
APP_CONFIG = HERE / "app-config.js"
# The release tested with this plugin; OHIF_VERSION overrides it.
OHIF_VERSION = "3.13.2"
DEFAULT_CACHE = REPO / ".cache" / "ohif"
NGINX = "/usr/sbin/nginx"
MIME_TYPES = "/etc/nginx/mime.types"

# Main configuration of a private nginx: everything it writes stays in its run folder.
MAIN_CONFIG = """\
{user}worker_processes 2;
pid {run}/nginx.pid;
events {{ worker_connections 512; }}
http {{
    include {mime_types};
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 10000;
    # $request_time against $upstream_response_time tells the proxy's share of each request.
    # (The upstream time is a list when nginx tried more than one connection: quoted, last.)
    log_format timing '$status $request_method "$request_uri" $body_bytes_sent '
                      '$request_time $msec "$upstream_response_time"';
    access_log {run}/access.log timing;
    client_body_temp_path {run}/tmp/body;
    proxy_temp_path {run}/tmp/proxy;
    fastcgi_temp_path {run}/tmp/fastcgi;
    uwsgi_temp_path {run}/tmp/uwsgi;
    scgi_temp_path {run}/tmp/scgi;
    include {run}/site.conf;
}}
"""


def ohif_version() -> str:
    return os.environ.get("OHIF_VERSION", OHIF_VERSION)


def fetch_viewer(cache: Path = DEFAULT_CACHE, version: str | None = None) -> Path:
    """The viewer's dist/ folder, fetched with npm the first time (about 50 MB)."""
    version = version or ohif_version()
    dist = cache / f"app-{version}" / "dist"
    if (dist / "index.html").exists():
        return dist
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch the OHIF Viewer (Debian package: npm)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        # npm checks the tarball's integrity against the registry's before writing it.
        subprocess.run(
            [npm, "pack", "--silent", f"@ohif/app@{version}"],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (tarball,) = Path(work).glob("*.tgz")
        with tarfile.open(tarball) as archive:
            extract(archive, Path(work))
        # Renamed into place whole, so an interrupted fetch never leaves a partial viewer; a
        # viewer another process put there meanwhile (tests and benchmarks at once) is kept.
        if dist.parent.exists() and not (dist / "index.html").exists():
            shutil.rmtree(dist.parent)
        try:
            (Path(work) / "package").rename(dist.parent)
        except OSError:
            if not (dist / "index.html").exists():
                raise
    return dist


def extract(archive: tarfile.TarFile, target: Path) -> None:
    """Extract with the 'data' filter where this Python has it (no links out, no devices)."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(target, filter="data")
    else:
        archive.extractall(target)


def site_config(
    listen: str, dist: Path, app_config: Path, orthanc: str, template: str | None = None
) -> str:
    """nginx-site.conf (or `template`) with its placeholders filled in."""
    text = template or SITE_TEMPLATE.read_text()
    for name, value in {
        "@LISTEN@": listen,
        "@OHIF_DIST@": str(dist),
        "@APP_CONFIG@": str(app_config),
        "@ORTHANC@": orthanc.removeprefix("http://").rstrip("/"),
    }.items():
        text = text.replace(name, value)
    return text


def write_configuration(
    run: Path,
    listen: str,
    dist: Path,
    orthanc: str,
    app_config_text: str | None = None,
    site_template: str | None = None,
) -> Path:
    """nginx.conf, site.conf and app-config.js in `run` (`app_config_text` and `site_template`
    default to the files beside this one); returns the nginx.conf path."""
    for folder in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (run / folder).mkdir(parents=True, exist_ok=True)
    app_config = run / "app-config.js"
    app_config.write_text(app_config_text or APP_CONFIG.read_text())
    site = site_config(listen, dist, app_config, orthanc, site_template)
    (run / "site.conf").write_text(site)
    # Started by root, nginx's workers would run as 'nobody' and could not read a private run
    # folder (pytest's temp folders are 0700): they run as root too, as Orthanc does then.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    main = MAIN_CONFIG.format(user=user, run=run, mime_types=MIME_TYPES)
    path = run / "nginx.conf"
    path.write_text(main)
    return path


class Nginx:
    """A private nginx serving the viewer and proxying DICOMweb to one Orthanc."""

    def __init__(
        self,
        run: Path,
        listen: str,
        orthanc: str,
        dist: Path | None = None,
        app_config_text: str | None = None,
        site_template: str | None = None,
    ) -> None:
        self.run = run
        self.listen = listen
        self.url = f"http://{listen}"
        dist = dist or fetch_viewer()
        self.config = write_configuration(
            run, listen, dist, orthanc, app_config_text, site_template
        )
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            NGINX,
            "-p",
            str(self.run),
            "-e",
            str(self.run / "error.log"),
            "-c",
            str(self.config),
        ]

    def start(self, timeout: float = 20) -> Nginx:
        subprocess.run([*self.command(), "-t", "-q"], check=True)
        self.process = subprocess.Popen([*self.command(), "-g", "daemon off;"])
        self.wait_until_ready(timeout)
        return self

    def wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nginx exited early:\n{self.error_log()}")
            try:
                with urllib.request.urlopen(self.url + "/app-config.js", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer within {timeout} s:\n{self.error_log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: finishes the requests in flight
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def error_log(self) -> str:
        path = self.run / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[str]:
        path = self.run / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orthanc", default="127.0.0.1:8042", help="Orthanc's HTTP address")
    parser.add_argument("--listen", default="127.0.0.1:3000", help="where the viewer is served")
    parser.add_argument("--run", type=Path, default=DEFAULT_CACHE / "run", help="nginx's folder")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where OHIF is kept")
    parser.add_argument("--fetch-only", action="store_true", help="fetch the viewer and stop")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    dist = fetch_viewer(args.cache)
    if args.fetch_only:
        print(dist)
        return
    nginx = Nginx(args.run, args.listen, args.orthanc, dist)
    nginx.start()
    print(f"OHIF Viewer:       {nginx.url}/", flush=True)
    # Stopping happens outside the handler: a handler stopping nginx would wait for it inside
    # the interrupted wait() below, which holds the lock that wait needs.
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    try:
        assert nginx.process is not None
        sys.exit(nginx.process.wait())
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        nginx.stop()


if __name__ == "__main__":
    main()
