#!/usr/bin/env bash
# Set up and start the Locus Cloud on its embedded default (SQLite, no accounts to create).
# The first start prints an admin login and a token. Extra arguments go to `locus-cloud serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/locus-cloud serve "$@"
