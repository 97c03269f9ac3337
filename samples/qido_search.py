#!/usr/bin/env python3
"""QIDO-RS: search the studies of a DICOMweb server and print them as a table.

Usage:
    .venv/bin/python samples/qido_search.py [--url http://localhost:8042/dicom-web]
        [--user NAME --password SECRET] [--patient-id ID] [--patient-name "DOE*"]
        [--date 20240101-20241231] [--modality CT] [--accession NUMBER] [--limit 50] [--json]

Every filter is optional; `*` and `?` are wildcards, dates accept ranges (`20240101-`).
`--json` prints the server's DICOM JSON instead of the table.
Needs: requests; the project's virtual environment (.venv, made by scripts/setup.sh) has it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import requests

COLUMNS = {
    "StudyInstanceUID": "0020000D",
    "PatientID": "00100020",
    "PatientName": "00100010",
    "StudyDate": "00080020",
    "Modalities": "00080061",
    "Description": "00081030",
}


def value(dataset: dict[str, Any], tag: str) -> str:
    values = dataset.get(tag, {}).get("Value", [])
    return "\\".join(v["Alphabetic"] if isinstance(v, dict) else str(v) for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://localhost:8042/dicom-web")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--patient-id", dest="PatientID")
    parser.add_argument("--patient-name", dest="PatientName")
    parser.add_argument("--date", dest="StudyDate")
    parser.add_argument("--modality", dest="ModalitiesInStudy")
    parser.add_argument("--accession", dest="AccessionNumber")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print the DICOM JSON answer")
    args = parser.parse_args()
    filters = ("PatientID", "PatientName", "StudyDate", "ModalitiesInStudy", "AccessionNumber")
    params = {name: getattr(args, name) for name in filters if getattr(args, name)}
    params.update(limit=str(args.limit), includefield="00081030")
    response = requests.get(
        args.url.rstrip("/") + "/studies",
        params=params,
        headers={"Accept": "application/dicom+json"},
        auth=(args.user, args.password or "") if args.user else None,
        timeout=60,
    )
    response.raise_for_status()
    studies = response.json() if response.content.strip() else []
    if args.json:
        print(json.dumps(studies, indent=2))
        return
    print("\t".join(COLUMNS))
    for study in studies:
        print("\t".join(value(study, tag) for tag in COLUMNS.values()))
    print(f"{len(studies)} studies")


if __name__ == "__main__":
    main()
