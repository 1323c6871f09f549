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
# Programs that tests run for real: a missing one fails its test rather than skipping it
# (tests/support/programs.py). Node and npm: the VS Code client's transport
# (tests/locusd/server/test_node_client.py, which npm-installs vscode-jsonrpc) and `node --test`
# counts; cargo: `cargo test` counts (tests/locusd/agent/test_testcounts.py); systemd and setpriv:
# systemd's own checks of the service unit (tests/locusd/service/test_units.py).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
command -v cargo >/dev/null 2>&1 || packages+=(cargo)
command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
command -v setpriv >/dev/null 2>&1 || packages+=(util-linux)
# The VS Code workbench test (tests/editors/test_vscode_workbench.py): code-server from npm builds
# a few native modules against Node's headers, and VS Code's search uses Debian's rg (linked in,
# so nothing is downloaded from GitHub).
command -v rg >/dev/null 2>&1 || packages+=(ripgrep)
command -v make >/dev/null 2>&1 || packages+=(make)
command -v g++ >/dev/null 2>&1 || packages+=(g++)
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
