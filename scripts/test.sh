#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian/Ubuntu machine (PostgreSQL included),
# then run lint, type checks and every test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# A real PostgreSQL server for the PostgreSQL half of the suite (tests start their own), and
# bubblewrap, which contains the agent's commands (tests/locusd/agent/test_sandbox.py).
packages=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  packages+=(postgresql)
fi
command -v bwrap >/dev/null 2>&1 || packages+=(bubblewrap)
command -v git >/dev/null 2>&1 || packages+=(git)
# Headless Chromium for the dashboard browser tests (tests/cloud_api/dashboard, driven by Playwright).
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
if [ ${#packages[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

echo "== python environment"
scripts/bootstrap.sh dev

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy cloud_api locusd tests bench
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
