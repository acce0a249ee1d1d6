#!/bin/sh
# Installs crmbridge from a built wheel, exactly as the container image does; the test
# tests/e2e/test_docker_install.py runs this same script into a fresh virtual environment.
# Usage: docker/install.sh WHEEL_DIR [PYTHON]
set -eu
wheel_dir=$1
python=${2:-python3}
set -- "$wheel_dir"/crmbridge-*.whl
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
  echo "install.sh: expected exactly one crmbridge wheel in $wheel_dir" >&2
  exit 2
fi
"$python" -m pip install --no-cache-dir --disable-pip-version-check --quiet "$1"
# The entry point must import and answer: a broken install fails the build, not the start.
"$(dirname "$python")/crmbridge" --version
