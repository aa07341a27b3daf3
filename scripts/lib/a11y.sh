# The accessibility engine of the Chromium tests (tests/test_a11y_browser.py): axe-core from the
# npm registry by package name, pinned with its integrity hash in tests/a11y/package-lock.json and
# installed into tests/a11y/node_modules (git-ignored). Source it from bash; `ensure_a11y` installs
# Node.js and npm from Debian's packages when absent (as root only), then runs `npm ci` when the
# installed copy is missing or older than the lock file. Without it the a11y tests skip (fail in CI).

ensure_a11y() {
  local dir="$ROOT/tests/a11y"
  if [ -f "$dir/node_modules/axe-core/axe.min.js" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
      echo "npm is not installed; install Node.js and npm (or run this as root to have them installed)." >&2
      return 1
    fi
    echo "Installing Node.js and npm from Debian's packages ..." >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } || return 1
  fi
  echo "Installing the accessibility test engine (npm ci in tests/a11y) ..." >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}
