#!/usr/bin/env bash
# What `make test` needs outside the virtualenv, made present: Debian's Chromium and CJK fonts
# for the browser tests, PostgreSQL on 127.0.0.1:5432 (role root, database test) and Redis on
# 127.0.0.1:6379. Idempotent; when everything is there it only looks (well under a second).
# As root it installs and starts what is missing; otherwise it stops and prints the command to
# run, because a test run must not ask for a password.
set -euo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_HOST=127.0.0.1 REDIS_PORT=6379
# The database every run needs: the PostgreSQL tests' server even when the suite runs on SQLite.
PG_URL="postgresql://root@$PG_HOST:$PG_PORT/test"

is_root() { [ "$(id -u)" -eq 0 ]; }

listening() {  # host port: something accepts connections there
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

installed() {  # package: dpkg has it installed
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

wait_for() {  # host port name
  for _ in $(seq 30); do listening "$1" "$2" && return 0; sleep 1; done
  echo "test prerequisites: $3 did not start on $1:$2" >&2
  exit 1
}

# --------------------------------------------------------------------------- packages
# Chromium from Debian, never a browser download; the fonts so that Chinese pages render.
missing=()
for package in chromium fonts-noto-cjk; do
  installed "$package" || missing+=("$package")
done
# The servers only when nothing answers on their port (a server elsewhere will do).
if ! listening "$PG_HOST" "$PG_PORT" && ! command -v pg_ctlcluster >/dev/null; then
  missing+=(postgresql)
fi
if ! listening "$REDIS_HOST" "$REDIS_PORT" && ! command -v redis-server >/dev/null; then
  missing+=(redis-server)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if ! is_root; then
    echo "test prerequisites: missing Debian packages: ${missing[*]}. Install them with:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "test prerequisites: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --------------------------------------------------------------------------- PostgreSQL
if ! listening "$PG_HOST" "$PG_PORT"; then
  clusters=$(ls /etc/postgresql 2>/dev/null || true)
  if ! is_root; then
    echo "test prerequisites: nothing answers on $PG_HOST:$PG_PORT. Start PostgreSQL with:" >&2
    echo "  sudo pg_ctlcluster --skip-systemctl-redirect ${clusters:-<version>} main start" >&2
    exit 1
  fi
  for version in $clusters; do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  wait_for "$PG_HOST" "$PG_PORT" PostgreSQL
fi
if ! psql "$PG_URL" -Atqc "select 1" >/dev/null 2>&1; then
  # A fresh cluster knows only the postgres role; the tests connect as root.
  if is_root && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- psql -q -c "create role root superuser login" 2>/dev/null || true
    runuser -u postgres -- createdb -O root test 2>/dev/null || true
  fi
  if ! psql "$PG_URL" -Atqc "select 1" >/dev/null 2>&1; then
    echo "test prerequisites: cannot connect to $PG_URL without a password." >&2
    echo "  The tests need a superuser role root and a database test, with trust authentication" >&2
    echo "  for 127.0.0.1 in pg_hba.conf (host all all 127.0.0.1/32 trust)." >&2
    exit 1
  fi
fi

# --------------------------------------------------------------------------- Redis
if ! listening "$REDIS_HOST" "$REDIS_PORT"; then
  # Redis runs fine as any user; only its directory needs to be writable.
  dir=/var/lib/redis
  [ -w "$dir" ] || dir="${TMPDIR:-/tmp}"
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" \
    --appendonly no --dir "$dir" --logfile "$dir/chanjiao-test-redis.log"
  wait_for "$REDIS_HOST" "$REDIS_PORT" Redis
fi
