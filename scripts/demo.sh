#!/usr/bin/env bash
# The whole trip on embedded defaults, for a newcomer with nothing configured and no network:
# sets up .venv, then `locus demo` starts a local cloud on SQLite and a daemon of its own (all in
# one temp directory), has the agent fix a failing test in a sample repository (a recorded
# session unless ANTHROPIC_API_KEY is set), reviews, commits and reports it. Extra arguments go
# to `locus demo` (e.g. --keep to look around afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh >/dev/null 2>&1 || { echo "setting up .venv failed: run scripts/bootstrap.sh to see why" >&2; exit 1; }
exec .venv/bin/locus demo "$@"
