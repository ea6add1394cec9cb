#!/usr/bin/env bash
# Installs what the app (and, with --dev, the test suite) needs, idempotently.
# Safe to run again and again: every step checks before it installs.
#
#   scripts/bootstrap.sh        # runtime: Python venv, bun (from the npm registry)
#   scripts/bootstrap.sh --dev  # also: test deps, Debian Chromium, PostgreSQL, node test deps
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dev=0
[ "${1:-}" = "--dev" ] && dev=1

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  say "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# 1. Python virtual environment with pinned dependencies.
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$python" -m venv .venv
fi
req=requirements.txt
[ $dev = 1 ] && req=requirements-dev.txt
stamp=.venv/.installed-$(sha256sum requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
# A --dev install holds the runtime's requirements too, so it satisfies a plain bootstrap.
if [ ! -f "$stamp-$dev" ] && [ ! -f "$stamp-1" ]; then
  say "pip install -r $req"
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  rm -f .venv/.installed-*
  touch "$stamp-$dev"
fi

# 2. bun from the npm registry (Reflex would download it from the internet, which fails here).
bun_bin=.tools/bun/node_modules/.bin/bun
if ! "$bun_bin" --version >/dev/null 2>&1; then
  say "npm install bun@1.4.4 into .tools/bun"
  npm install --prefix .tools/bun bun@1.4.4 --no-audit --no-fund --loglevel=error >/dev/null
fi

# 3. Test-only system packages (Chromium; PostgreSQL and Redis for the production topology) and node test dependencies.
if [ $dev = 1 ]; then
  apt_install chromium postgresql redis-server
  for dir in tests/conformance trigger; do
    [ -f "$dir/package-lock.json" ] || continue
    if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      say "npm ci in $dir"
      npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
    fi
  done
fi
say "ready"
