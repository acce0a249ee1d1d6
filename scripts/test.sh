#!/usr/bin/env bash
# The whole check, as CI runs it: install into .venv, lint, type-check, run every test.
# Usage: scripts/test.sh [pytest arguments]
#
# The state-store tests run on SQLite and on PostgreSQL. CRMBRIDGE_TEST_POSTGRES_URL names a
# server whose user may create databases; when it is unset, a throwaway PostgreSQL is started
# on 127.0.0.1 for this run and stopped at exit (scripts/throwaway-postgres.sh). The console's
# browser tests need Debian's chromium at /usr/bin/chromium: installed here when missing (root).
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
if [ -z "${CRMBRIDGE_TEST_POSTGRES_URL:-}" ]; then
  # shellcheck source=scripts/throwaway-postgres.sh
  source scripts/throwaway-postgres.sh
  start_throwaway_postgres
fi
if [ ! -x /usr/bin/chromium ]; then
  # The console's browser tests drive Debian's chromium through Playwright (no browser download).
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's chromium (the browser tests need /usr/bin/chromium)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
  else
    echo "error: /usr/bin/chromium is missing; install Debian's chromium (apt-get install chromium)" >&2
    exit 1
  fi
fi
echo "== pytest"
.venv/bin/pytest "$@"
