#!/usr/bin/env bash
# One entry point for a newcomer and for CI. Each command sets up what it needs first:
#   ./dev.sh demo    set up, then run `nightowl demo` on the embedded default (SQLite + local folder)
#   ./dev.sh check   set up, then run every check: ruff, mypy (strict), pytest with real services
# Set-up: a pinned uv in .cache/uv (nothing installed globally), then `uv sync --locked` into .venv.
set -euo pipefail
cd "$(dirname "$0")"

UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3}

setup() {
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "nightowl needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1)); set PYTHON=..." >&2
    exit 1
  fi
  if [ ! -x .cache/uv/bin/uv ]; then
    "$PYTHON" -m venv .cache/uv
    .cache/uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
  fi
  .cache/uv/bin/uv sync --locked --quiet --python "$PYTHON"
}

check() {
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  .venv/bin/mypy
  set +e
  .venv/bin/python -m pytest "$@"
  status=$?
  set -e
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here, not a pass" >&2
    exit 1
  fi
  exit "$status"
}

case "${1:-}" in
  demo) setup; shift; exec .venv/bin/nightowl demo "$@" ;;
  check) setup; shift; check "$@" ;;
  setup) setup ;;
  *) echo "usage: ./dev.sh demo | check [pytest args] | setup" >&2; exit 2 ;;
esac
