#!/usr/bin/env bash
# Sets everything up (Debian packages, the venv with test tools), lints and type-checks, then runs
# our tests and Orthanc's own DICOMweb integration suite; fails if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# npm fetches the OHIF Viewer for its browser test: Debian's package only when none is installed.
npm_package=""
command -v npm >/dev/null 2>&1 || npm_package="npm"
DICOMWEB_EXTRAS=test scripts/setup.sh orthanc-dicomweb chromium postgresql orthanc-postgresql nginx $npm_package
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
status=0
.venv/bin/python -m pytest "$@" || status=$?
# Orthanc's own DICOMweb integration suite, when its folder is beside the repository.
scripts/run-orthanc-suite.sh || status=$?
exit $status
