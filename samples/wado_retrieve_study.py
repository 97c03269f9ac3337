#!/usr/bin/env python3
"""WADO-RS: retrieve a whole study and save each instance as a DICOM file.

Usage:
    .venv/bin/python samples/wado_retrieve_study.py STUDY_INSTANCE_UID OUTPUT_FOLDER
                                  [--url http://localhost:8042/dicom-web]
                                  [--user NAME --password SECRET]

Files are written as OUTPUT_FOLDER/{SeriesInstanceUID}/{SOPInstanceUID}.dcm, in the transfer
syntax the server stores them in.
Needs: dicomweb-client; the project's virtual environment (.venv, made by scripts/setup.sh) has it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("output", type=Path)
    parser.add_argument("--url", default="http://localhost:8042/dicom-web")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    session = (
        create_session_from_user_pass(args.user, args.password or "")
        if args.user
        else requests.Session()
    )
    client = DICOMwebClient(args.url, session=session)
    count = 0
    for dataset in client.iter_study(args.study):
        folder = args.output / dataset.SeriesInstanceUID
        folder.mkdir(parents=True, exist_ok=True)
        dataset.save_as(folder / f"{dataset.SOPInstanceUID}.dcm", enforce_file_format=True)
        count += 1
    print(f"Saved {count} instances of study {args.study} in {args.output}")


if __name__ == "__main__":
    main()
