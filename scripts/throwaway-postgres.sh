# Sourced by scripts/test.sh: start a throwaway PostgreSQL on 127.0.0.1 for one test run.
#
# start_throwaway_postgres: initdb + pg_ctl in a new temporary directory (trust auth, a free
# port, no fsync: the data dies with the run), export CRMBRIDGE_TEST_POSTGRES_URL, and stop the
# server and remove the directory when the calling shell exits. As root the server runs as the
# `postgres` user (PostgreSQL refuses to run as root). Where no PostgreSQL binaries are found,
# Debian's `postgresql` package is installed when possible; otherwise it fails loudly: the
# PostgreSQL tests must run, never be skipped.

_find_pg_bin() {
  local candidate
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return 0
  fi
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/pg_ctl" ] && [ -x "$candidate/initdb" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

_free_port() {
  "${PYTHON:-python3}" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

start_throwaway_postgres() {
  local bin
  if ! bin=$(_find_pg_bin); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "== installing Debian's postgresql (pg_ctl/initdb not found)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
    fi
    bin=$(_find_pg_bin) || {
      echo "error: PostgreSQL's pg_ctl/initdb not found; install PostgreSQL or set CRMBRIDGE_TEST_POSTGRES_URL" >&2
      return 1
    }
  fi
  local as=()
  PG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/crmbridge-pg.XXXXXX")
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PG_TMP"
    as=(runuser -u postgres --)
  fi
  PG_PORT=$(_free_port)
  PG_CTL=("${as[@]}" "$bin/pg_ctl" -D "$PG_TMP/data")
  trap stop_throwaway_postgres EXIT
  "${as[@]}" "$bin/initdb" -D "$PG_TMP/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$PG_TMP/initdb.log" 2>&1 \
    || { cat "$PG_TMP/initdb.log" >&2; return 1; }
  "${PG_CTL[@]}" -l "$PG_TMP/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_TMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { cat "$PG_TMP/server.log" >&2; return 1; }
  export CRMBRIDGE_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "== throwaway PostgreSQL at $CRMBRIDGE_TEST_POSTGRES_URL" >&2
}

stop_throwaway_postgres() {
  if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP/data" ]; then
    "${PG_CTL[@]}" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [ -n "${PG_TMP:-}" ] && rm -rf "$PG_TMP"
  PG_TMP=
}
