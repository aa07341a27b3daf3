# The local services the tests talk to: PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379.
# Source it from bash. `ensure_services` makes both answer: started if stopped, installed from
# Debian's packages if absent (as root only), waiting at most SERVICE_WAIT_S (30) seconds each.
# Without root it only says what is missing; the tests that need it then skip (or fail, in CI).

answers() {  # answers HOST PORT: something accepts TCP connections there
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

_as_root() { [ "$(id -u)" = 0 ]; }

_apt_install() {
  if [ -z "${_APT_UPDATED:-}" ]; then
    apt-get update -qq || return 1
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

_wait_for() {  # _wait_for NAME PORT
  local deadline=$(( SECONDS + ${SERVICE_WAIT_S:-30} ))
  until answers 127.0.0.1 "$2"; do
    if (( SECONDS >= deadline )); then
      echo "error: $1 is still not answering on 127.0.0.1:$2" >&2; return 1
    fi
    sleep 0.5
  done
}

ensure_postgres() {
  answers 127.0.0.1 5432 && return 0
  if ! _as_root; then
    echo "PostgreSQL is not answering on 127.0.0.1:5432; start it (or run this as root to have it started)." >&2
    return 1
  fi
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "Installing PostgreSQL from Debian's packages ..." >&2
    _apt_install postgresql || return 1
    # The tests connect as postgres over TCP without a password (trust on loopback only).
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' \
      /etc/postgresql/*/main/pg_hba.conf
    answers 127.0.0.1 5432 && pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main reload
  fi
  if ! answers 127.0.0.1 5432; then
    echo "Starting PostgreSQL ..." >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  _wait_for PostgreSQL 5432
}

ensure_redis() {
  answers 127.0.0.1 6379 && return 0
  if ! _as_root; then
    echo "Redis is not answering on 127.0.0.1:6379; start it (or run this as root to have it started)." >&2
    return 1
  fi
  if ! command -v redis-server >/dev/null; then
    echo "Installing Redis from Debian's packages ..." >&2
    _apt_install redis-server || return 1
  fi
  if ! answers 127.0.0.1 6379; then
    echo "Starting Redis ..." >&2
    mkdir -p /var/lib/redis /var/log/redis
    # With AOF, as production runs it (docs/operations.md, "Durability of an ack").
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
      --appendonly yes --appendfsync everysec \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
  _wait_for Redis 6379
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if ! _as_root; then
    echo "Chromium is missing (/usr/bin/chromium); the browser tests need it: apt-get install chromium" >&2
    return 1
  fi
  echo "Installing Chromium from Debian's packages ..." >&2
  _apt_install chromium
}

ensure_services() {
  local ok=0
  ensure_chromium || ok=1
  ensure_postgres || ok=1
  ensure_redis || ok=1
  return $ok
}
