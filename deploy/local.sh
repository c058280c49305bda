#!/usr/bin/env bash
# driftline on a fresh machine, in one command.
#
#   bash deploy/local.sh demo [demo args]     install, then `driftline demo` (local broker included)
#   bash deploy/local.sh test [pytest args]   install, then run the whole test suite
#   bash deploy/local.sh setup                install only
#
# Installs into ./.venv (driftline with its [dev] extras) and fetches the pinned Kafka broker's
# jars from Maven Central into ./.cache (both git-ignored). Needs python3 (3.11+), Java 17+ and
# Maven; the tests also need Prometheus and promtool (Debian package `prometheus`), installed
# here when missing if apt-get can be used. CI runs exactly `bash deploy/local.sh test`.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.venv

setup() {
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
  fi
  # Reinstall only when the dependency list changed.
  stamp="$venv/.driftline-installed"
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e '.[dev]'
    echo "$want" > "$stamp"
  fi
  "$venv/bin/driftline" kafka fetch >/dev/null
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
    exec "$venv/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: bash deploy/local.sh {demo|test|setup} [args]" >&2
    exit 2
    ;;
esac
