#!/usr/bin/env bash
# The agent end to end with no model and no account: copy examples/sample-repo (a project with
# a failing test) into a temporary git repository, then let `locus agent run` replay a recorded
# session that fixes it. The runner itself re-runs the tests; the diff and evidence are printed.
# Extra arguments go to `locus agent run` (e.g. --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh >/dev/null 2>&1 || { echo "setting up .venv failed: run scripts/bootstrap.sh to see why" >&2; exit 1; }
work="$(mktemp -d)"
cp -r examples/sample-repo "$work/sample-repo"
git -C "$work/sample-repo" init -q -b main
git -C "$work/sample-repo" add -A
git -C "$work/sample-repo" -c user.name=Demo -c user.email=demo@localhost commit -q -m "sample project"
export LOCUS_CONFIG="$work/config.toml"
cat > "$LOCUS_CONFIG" <<TOML
worktree_dir = "$work/worktrees"
state_dir = "$work/state"
TOML
exec .venv/bin/locus agent run --repo "$work/sample-repo" \
  --task "$(cat examples/fix-median.task)" --replay examples/fix-median.jsonl "$@"
