#!/usr/bin/env python3
"""STOW-RS: upload every DICOM file of a folder to a DICOMweb server, in batches.

Usage:
    .venv/bin/python samples/stow_upload_folder.py FOLDER [--url http://localhost:8042/dicom-web]
                                        [--user NAME --password SECRET] [--batch 20]

Files that are not DICOM (no "DICM" preamble) are skipped. Each batch is one
`POST {url}/studies` request with a `multipart/related; type="application/dicom"` body;
the server's answer says which instances were stored and which failed.
Needs: requests; the project's virtual environment (.venv, made by scripts/setup.sh) has it.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests

FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"


def dicom_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with path.open("rb") as file:
                if file.read(132)[128:] == b"DICM":
                    yield path


def batches(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start : start + size]


def multipart_body(paths: list[Path], boundary: str) -> bytes:
    parts = [
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + path.read_bytes()
        for path in paths
    ]
    return b"\r\n".join(parts) + f"\r\n--{boundary}--\r\n".encode()


def store(session: requests.Session, url: str, paths: list[Path]) -> tuple[int, int]:
    """Send one batch; returns (stored, failed) as counted by the server."""
    boundary = uuid.uuid4().hex
    response = session.post(
        url.rstrip("/") + "/studies",
        data=multipart_body(paths, boundary),
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
        timeout=300,
    )
    if response.status_code not in (200, 202, 409):
        sys.exit(f"STOW-RS failed: HTTP {response.status_code}: {response.text[:500]}")
    answer = response.json() if response.content.strip() else {}
    stored = len(answer.get(REFERENCED_SOP_SEQUENCE, {}).get("Value", []))
    failed = len(answer.get(FAILED_SOP_SEQUENCE, {}).get("Value", []))
    return stored, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--url", default="http://localhost:8042/dicom-web")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--batch", type=int, default=20, help="files per request")
    args = parser.parse_args()
    paths = list(dicom_files(args.folder))
    if not paths:
        sys.exit(f"No DICOM file in {args.folder}")
    session = requests.Session()
    if args.user:
        session.auth = (args.user, args.password or "")
    stored = failed = 0
    for batch in batches(paths, max(1, args.batch)):
        batch_stored, batch_failed = store(session, args.url, batch)
        stored, failed = stored + batch_stored, failed + batch_failed
        print(f"sent {len(batch)} files: {batch_stored} stored, {batch_failed} failed")
    print(f"Done: {stored} stored, {failed} failed, out of {len(paths)} files")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
