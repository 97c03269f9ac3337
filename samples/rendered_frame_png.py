#!/usr/bin/env python3
"""WADO-RS Retrieve Rendered: save one frame of an instance as a PNG image.

Usage:
    .venv/bin/python samples/rendered_frame_png.py STUDY_UID SERIES_UID INSTANCE_UID OUTPUT.png
                                 [--frame 1] [--url http://localhost:8042/dicom-web]
                                 [--user NAME --password SECRET] [--viewport 512,512]

The server renders the frame (windowing, color) and answers image/png.
Needs: requests; the project's virtual environment (.venv, made by scripts/setup.sh) has it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import requests

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("series")
    parser.add_argument("instance")
    parser.add_argument("output", type=Path)
    parser.add_argument("--frame", type=int, default=1)
    parser.add_argument("--url", default="http://localhost:8042/dicom-web")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--viewport", help="width,height of the rendered image")
    args = parser.parse_args()
    uri = (
        f"{args.url.rstrip('/')}/studies/{args.study}/series/{args.series}"
        f"/instances/{args.instance}/frames/{args.frame}/rendered"
    )
    response = requests.get(
        uri,
        params={"viewport": args.viewport} if args.viewport else None,
        headers={"Accept": "image/png"},
        auth=(args.user, args.password or "") if args.user else None,
        timeout=60,
    )
    if response.status_code != 200:
        sys.exit(f"Retrieve Rendered failed: HTTP {response.status_code}: {response.text[:300]}")
    if not response.content.startswith(PNG_SIGNATURE):
        sys.exit(f"The server answered {response.headers.get('Content-Type')}, not a PNG")
    args.output.write_bytes(response.content)
    print(f"Saved frame {args.frame} as {args.output} ({len(response.content)} bytes)")


if __name__ == "__main__":
    main()
