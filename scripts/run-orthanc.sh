#!/usr/bin/env bash
# Sets everything up, then runs Orthanc with the DICOMweb plugin in the foreground (Ctrl-C stops).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PYTHONPATH="$PWD:$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
setting() { /usr/bin/python3 -c "import json; print(json.load(open('orthanc.json')).get('$1', '$2'))"; }
port=$(setting HttpPort 8042)
# Links that answer in a browser (the DICOMweb root itself has no page: QIDO-RS lists studies).
echo "Orthanc Explorer:  http://localhost:$port/app/explorer.html (upload DICOM files there)"
echo "DICOMweb client:   http://localhost:$port/dicom-web/app/client/index.html"
echo "QIDO-RS studies:   http://localhost:$port/dicom-web/studies"
echo "Store a file:      curl --data-binary @file.dcm http://localhost:$port/instances"
echo "DICOM C-STORE:     AET $(setting DicomAet ORTHANC), port $(setting DicomPort 4242)"
exec Orthanc orthanc.json
