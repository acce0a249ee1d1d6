#!/usr/bin/env bash
# The whole check, as CI runs it: install into .venv, lint, type-check, run every test.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
echo "== ruff"
.venv/bin/ruff check
.venv/bin/ruff format --check
echo "== mypy --strict src"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
