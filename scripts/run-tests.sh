#!/usr/bin/env bash
# Sets everything up (Debian packages, the venv with test tools), lints, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
DICOMWEB_EXTRAS=test scripts/setup.sh orthanc-dicomweb chromium
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
