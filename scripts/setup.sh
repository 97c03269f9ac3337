#!/usr/bin/env bash
# Installs what the plugin and its tests need; safe to run again (it only adds what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

DEBIAN_PACKAGES="orthanc orthanc-python python3-venv $*"
missing=""
for package in $DEBIAN_PACKAGES; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
  echo "Installing Debian packages:$missing"
  $SUDO apt-get update -qq
  # The orthanc package tries to start a system service; nothing here needs it.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# The plugin runs inside Debian's CPython 3.11 embedded by orthanc-python: build the venv with it.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
if [ "${DICOMWEB_EXTRAS:-}" != "" ]; then target=".[${DICOMWEB_EXTRAS}]"; else target="."; fi
stamp=".venv/.installed-$(cat setup.py orthanc_dicomweb/__init__.py | md5sum | cut -c1-12)-${DICOMWEB_EXTRAS:-none}"
if [ ! -e "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e "$target"
  touch "$stamp"
fi
