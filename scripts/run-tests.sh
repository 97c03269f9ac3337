#!/usr/bin/env bash
# Sets everything up (Debian packages, the venv with test tools), lints, then runs our tests and
# Orthanc's own DICOMweb integration suite; fails if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
DICOMWEB_EXTRAS=test scripts/setup.sh orthanc-dicomweb chromium postgresql orthanc-postgresql nginx
.venv/bin/ruff check .
.venv/bin/ruff format --check .
status=0
.venv/bin/python -m pytest "$@" || status=$?
# Orthanc's own DICOMweb integration suite, when its folder is beside the repository.
scripts/run-orthanc-suite.sh || status=$?
exit $status
