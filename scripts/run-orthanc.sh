#!/usr/bin/env bash
# Sets everything up, then runs Orthanc with the DICOMweb plugin in the foreground (Ctrl-C stops).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PYTHONPATH="$PWD:$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
port=$(/usr/bin/python3 -c 'import json; print(json.load(open("orthanc.json")).get("HttpPort", 8042))')
echo "Orthanc Explorer:  http://localhost:$port/app/explorer.html"
echo "DICOMweb root:     http://localhost:$port/dicom-web/"
echo "DICOMweb client:   http://localhost:$port/dicom-web/app/client/index.html"
echo "WADO-URI:          http://localhost:$port/wado"
exec Orthanc orthanc.json
