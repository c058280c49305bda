#!/usr/bin/env bash
# driftline on a fresh machine, in one command.
#
#   bash deploy/local.sh demo [demo args]          install, then `driftline demo` (local broker included)
#   bash deploy/local.sh test [pytest args]        install, then run the whole test suite
#   bash deploy/local.sh setup                     install only
#   bash deploy/local.sh lock [uv args]            refresh requirements-dev.lock and requirements.lock
#   bash deploy/local.sh test-latest [pytest args] the whole suite on the newest versions pyproject.toml
#                                                  allows instead of the lock (not part of CI)
#
# Installs into ./.venv exactly what requirements-dev.lock lists (runtime, [dev] and [bench], every
# file hash-checked), then driftline itself without dependencies, and fetches the pinned Kafka
# broker's jars from Maven Central into ./.cache (both git-ignored). Needs python3 (3.11+), Java
# 17+ and Maven; the tests also need Prometheus and promtool (Debian package `prometheus`),
# installed here when missing if apt-get can be used. CI runs exactly `bash deploy/local.sh test`.
#
# `lock` keeps every pin it can (a new dependency gets the newest version that fits); pass
# `--upgrade` to move everything to the newest versions, or `--upgrade-package NAME` for one.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.venv
dev_lock=requirements-dev.lock
runtime_lock=requirements.lock
# The lock tool lives in its own ignored venv: installing from the lock needs only pip.
uv_venv=.cache/uv-venv
uv_version=0.13.9
# The installer too is pinned: a new pip may resolve or verify differently.
pip_version=26.3

# pyproject.toml's build backend (hatchling), one requirement a line. Both locks carry it, so
# that driftline itself installs with --no-build-isolation and nothing pip fetches is unchecked.
build_requires() {
  "$python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))'
}
# What hatchling's editable build (`pip install -e .`) imports on top of that.
editable_requires=editables

setup() {
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
  fi
  # Reinstall only when the lock or the project's metadata changed.
  stamp="$venv/.driftline-installed"
  want=$(cat pyproject.toml "$dev_lock" | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet "pip==$pip_version"
    "$venv/bin/python" -m pip install --quiet --require-hashes -r "$dev_lock"
    "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation \
      --check-build-dependencies -e .
    echo "$want" > "$stamp"
  fi
  "$venv/bin/driftline" kafka fetch >/dev/null
}

lock() {
  if [ ! -x "$uv_venv/bin/uv" ] || [ "$("$uv_venv/bin/uv" --version | cut -d' ' -f2)" != "$uv_version" ]; then
    echo "installing uv $uv_version into $uv_venv ..."
    "$python" -m venv --clear "$uv_venv"
    "$uv_venv/bin/python" -m pip install --quiet "uv==$uv_version"
  fi
  # --universal: one lock for Linux, macOS and Windows and every Python >= 3.11 (markers where
  # they differ). The runtime lock is constrained by the dev lock, so the two always agree.
  compile=("$uv_venv/bin/uv" pip compile --quiet --universal --python-version 3.11
    --generate-hashes --custom-compile-command "bash deploy/local.sh lock")
  { build_requires; echo "$editable_requires"; } |
    "${compile[@]}" pyproject.toml - --extra dev --extra bench -o "$dev_lock" "$@"
  build_requires | "${compile[@]}" pyproject.toml - -c "$dev_lock" -o "$runtime_lock"
  echo "wrote $dev_lock and $runtime_lock"
}

prometheus_tools() {
  if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing Prometheus and promtool (Debian package prometheus) ..."
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        prometheus >/dev/null
    else
      echo "warning: prometheus/promtool not found: the Prometheus tests will fail" >&2
    fi
  fi
}

# A real browser for the page tests: Debian's chromium, driven by Playwright (whose own browser
# download is not used).
browser_tools() {
  if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing Chromium (Debian package chromium) ..."
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium >/dev/null
    else
      echo "warning: chromium not found: the browser tests will fail" >&2
    fi
  fi
}

# Every installed version that differs from the lock: what test-latest is testing.
lock_diff() {
  "$1" - "$dev_lock" <<'EOF'
import re
import sys
from importlib import metadata

from packaging.markers import Marker


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


locked = {}
for line in open(sys.argv[1]):
    m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$", line)
    if m and (not m[3] or Marker(m[3]).evaluate()):
        locked[norm(m[1])] = m[2]
installed = {norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
installed.pop("driftline", None)
for name in ("pip", "setuptools", "wheel"):
    installed.pop(name, None)
rows = [
    f"  {name:28} {locked.get(name, '-'):>14} -> {installed.get(name, '-')}"
    for name in sorted(locked.keys() | installed.keys())
    if locked.get(name) != installed.get(name)
]
print(f"== newest allowed versions that differ from {sys.argv[1]} (lock -> now):")
print("\n".join(rows) if rows else "  none: the lock is up to date")
EOF
}

test_latest() {
  latest=.venv-latest
  if [ ! -x "$latest/bin/python" ]; then
    "$python" -m venv "$latest"
  fi
  "$latest/bin/python" -m pip install --quiet --upgrade pip
  # eager: transitive dependencies move to their newest versions too, not only what is missing.
  mapfile -t build < <(build_requires)
  "$latest/bin/python" -m pip install --quiet --upgrade --upgrade-strategy eager \
    "${build[@]}" "$editable_requires" -e '.[dev,bench]'
  lock_diff "$latest/bin/python"
  "$latest/bin/driftline" kafka fetch >/dev/null
  prometheus_tools
  browser_tools
  exec "$latest/bin/python" -m pytest "$@"
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  setup)
    setup
    ;;
  demo)
    setup
    exec "$venv/bin/driftline" demo "$@"
    ;;
  test)
    setup
    prometheus_tools
    browser_tools
    exec "$venv/bin/python" -m pytest "$@"
    ;;
  lock)
    lock "$@"
    ;;
  test-latest)
    test_latest "$@"
    ;;
  *)
    echo "usage: bash deploy/local.sh {demo|test|setup|lock|test-latest} [args]" >&2
    exit 2
    ;;
esac
