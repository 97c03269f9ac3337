"""What a client sees of a download: curl, timed by itself from the request to the last byte.

Retrieve answers run at 1-2 GB/s on these machines: a Python client reading them (requests'
`iter_content`) spends about as much CPU as the server, so its own speed and chunk size decide
the figure (64 kB chunks gave the official plugin 0.73x of its 1 MB-chunk rate, this plugin
0.85x: a 1.36x "advantage" that no real client sees). curl reads at the socket's pace and
reports its own timings, so neither the client's interpreter nor a process start is measured.
Headers are those of a browser or DICOMweb client: `Accept-Encoding: gzip, deflate` too (a
compressing server would be charged for it; neither compresses multipart answers).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BROWSER_HEADERS = {"Accept-Encoding": "gzip, deflate"}
# One line per transfer: status, bytes received (as sent, before any decoding), seconds from
# the start of the request to the first and to the last byte.
WRITE_OUT = "%{http_code} %{size_download} %{time_starttransfer} %{time_total}\\n"


@dataclass(frozen=True)
class Transfer:
    status: int
    size: int
    first_byte: float
    seconds: float


def curl_command(urls: Sequence[str], headers: Mapping[str, str]) -> list[str]:
    command = ["curl", "--silent", "--show-error", "--write-out", WRITE_OUT]
    for name, value in {**BROWSER_HEADERS, **headers}.items():
        command += ["--header", f"{name}: {value}"]
    for url in urls:
        command += ["--output", "/dev/null", url]
    return command


def parse_transfers(output: str) -> list[Transfer]:
    transfers = []
    for line in output.splitlines():
        status, size, first_byte, total = line.split()
        transfers.append(Transfer(int(status), int(size), float(first_byte), float(total)))
    return transfers


def fetch(urls: Sequence[str], headers: Mapping[str, str], timeout: float = 600) -> list[Transfer]:
    """The URLs downloaded one after the other by one curl process (one client)."""
    done = subprocess.run(
        curl_command(urls, headers), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise OSError(f"curl failed ({done.returncode}): {done.stderr.strip()}")
    return parse_transfers(done.stdout)


def start(urls: Sequence[str], headers: Mapping[str, str]) -> subprocess.Popen[str]:
    """One client downloading the URLs in turn, running while the caller does other work."""
    return subprocess.Popen(
        curl_command(urls, headers), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str], timeout: float = 600) -> list[Transfer]:
    output, errors = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise OSError(f"curl failed ({process.returncode}): {errors.strip()}")
    return parse_transfers(output)
