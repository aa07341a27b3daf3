# Virtualenv bootstrapping shared by scripts/test, scripts/demo and scripts/bench/run.
# Source it from bash; it sets ROOT (the repo root) and defines:
#
#   ensure_venv VENV [EXTRAS] [REQUIREMENTS_FILE...]
#       Creates VENV with python3 (3.11+) if missing, then installs, quietly, the locked
#       dependencies (requirements/test.lock for EXTRAS "test", else requirements/runtime.lock)
#       with `--require-hashes`, then `-r FILE` for each requirements file (unlocked: the
#       benchmarks' peers), then the hub itself with `--no-deps -e .`. A lock that lacks
#       something pyproject.toml declares stops it (run scripts/lock). The install is skipped
#       when a stamp inside VENV holds the hash of pyproject.toml, the lock and the
#       requirements files as of the last successful install.
#   venv_current VENV [EXTRAS] [REQUIREMENTS_FILE...]
#       True when that install is already up to date.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

_venv_python() {  # the first python3 that is 3.11 or newer
  local candidate
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

_venv_stamp() { echo "$1/.hub-install${2:+-$2}"; }

_venv_lock() { echo "$ROOT/requirements/${1:-runtime}.lock"; }

_venv_hash() {  # _venv_hash EXTRAS FILE...
  local extras=$1; shift
  { echo "extras=$extras"; cat "$ROOT/pyproject.toml" "$(_venv_lock "$extras")" "$@"; } |
    sha256sum | cut -d' ' -f1
}

venv_current() {
  local venv=$1 extras=${2:-}
  shift $(( $# < 2 ? $# : 2 ))
  "$venv/bin/python" -c '' 2>/dev/null &&
    [ "$(cat "$(_venv_stamp "$venv" "$extras")" 2>/dev/null)" = "$(_venv_hash "$extras" "$@")" ]
}

ensure_venv() {
  local venv=$1 extras=${2:-}
  shift $(( $# < 2 ? $# : 2 ))
  venv_current "$venv" "$extras" "$@" && return 0
  if ! "$venv/bin/python" -c '' 2>/dev/null; then
    local python; python=$(_venv_python) || return 1
    echo "Creating $venv with $python ..." >&2
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then  # Debian's python3 lacks ensurepip
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv &&
          rm -rf "$venv" && "$python" -m venv "$venv" || return 1
      else
        echo "error: '$python -m venv' failed; install python3-venv" >&2; return 1
      fi
    fi
  fi
  local lock args=() file
  lock=$(_venv_lock "$extras")
  "$venv/bin/python" "$ROOT/scripts/lib/lockcheck.py" "$lock" "$extras" || return 1
  for file in "$@"; do args+=(-r "$file"); done
  echo "Installing ${lock#"$ROOT"/} and -e . into $venv ..." >&2
  local log pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
  log=$(mktemp)
  if ! { "${pip[@]}" --require-hashes -r "$lock" &&
         { [ ${#args[@]} -eq 0 ] || "${pip[@]}" "${args[@]}"; } &&
         "${pip[@]}" --no-deps -e "$ROOT"; } >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "error: pip install failed" >&2; return 1
  fi
  rm -f "$log"
  _venv_hash "$extras" "$@" >"$(_venv_stamp "$venv" "$extras")"
}
