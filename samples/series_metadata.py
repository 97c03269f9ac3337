#!/usr/bin/env python3
"""WADO-RS: fetch the metadata of a series and summarize its instances (or print the JSON).

Usage:
    .venv/bin/python samples/series_metadata.py STUDY_INSTANCE_UID SERIES_INSTANCE_UID
                              [--url http://localhost:8042/dicom-web]
                              [--user NAME --password SECRET] [--json]

Prints one line per instance (instance number, SOP Instance UID, rows x columns, frames),
sorted by instance number; `--json` prints the server's DICOM JSON instead.
Needs: dicomweb-client; the project's virtual environment (.venv, made by scripts/setup.sh) has it.
"""

from __future__ import annotations

import argparse
import json

import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass
from pydicom import Dataset


def describe(dataset: Dataset) -> str:
    size = f"{dataset.get('Rows', '?')}x{dataset.get('Columns', '?')}"
    frames = dataset.get("NumberOfFrames", 1)
    return f"{dataset.get('InstanceNumber', '')}\t{dataset.SOPInstanceUID}\t{size}\t{frames}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("series")
    parser.add_argument("--url", default="http://localhost:8042/dicom-web")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--json", action="store_true", help="print the DICOM JSON answer")
    args = parser.parse_args()
    session = (
        create_session_from_user_pass(args.user, args.password or "")
        if args.user
        else requests.Session()
    )
    client = DICOMwebClient(args.url, session=session)
    metadata = client.retrieve_series_metadata(args.study, args.series)
    if args.json:
        print(json.dumps(metadata, indent=2))
        return
    datasets = [Dataset.from_json(item) for item in metadata]
    datasets.sort(key=lambda d: int(d.get("InstanceNumber", 0) or 0))
    print("InstanceNumber\tSOPInstanceUID\tSize\tFrames")
    for dataset in datasets:
        print(describe(dataset))
    print(f"{len(datasets)} instances")


if __name__ == "__main__":
    main()
