#!/usr/bin/env bash
# Sets everything up, runs Orthanc with the DICOMweb plugin (as run-orthanc.sh does) and the OHIF
# Viewer v3 in front of it: fetched from the npm registry (@ohif/app, cached in .cache/ohif/),
# configured for this plugin and served with Debian's nginx on one origin with /dicom-web/.
# Ctrl-C stops both. VIEWER_PORT (default 3000) and OHIF_VERSION change the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="nginx"
# npm fetches the viewer; Debian's package only when no npm is installed (e.g. Node.js's own).
command -v npm >/dev/null 2>&1 || extra="$extra npm"
scripts/setup.sh $extra
export PYTHONPATH="$PWD:$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
port=$(/usr/bin/python3 -c 'import json; print(json.load(open("orthanc.json")).get("HttpPort", 8042))')
viewer_port="${VIEWER_PORT:-3000}"
.venv/bin/python samples/ohif/viewer.py --fetch-only >/dev/null

Orthanc orthanc.json &
orthanc_pid=$!
viewer_pid=""
# Whatever ends this script (Ctrl-C, a TERM, an error) stops both servers.
trap 'kill $viewer_pid $orthanc_pid 2>/dev/null; wait 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
for _ in $(seq 100); do
  .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "http://127.0.0.1:$port/system" >/dev/null 2>&1 && break
  kill -0 "$orthanc_pid" 2>/dev/null || { echo "Orthanc exited, see its output above" >&2; exit 1; }
  sleep 0.2
done
echo "Orthanc Explorer:  http://localhost:$port/app/explorer.html"
echo "DICOMweb root:     http://localhost:$port/dicom-web/"
# Prints the viewer's URL once nginx answers. In the background so that the traps above run
# as soon as a signal comes (bash runs them only between commands, and 'wait' is one).
.venv/bin/python samples/ohif/viewer.py --orthanc "127.0.0.1:$port" --listen "127.0.0.1:$viewer_port" &
viewer_pid=$!
wait "$viewer_pid"
