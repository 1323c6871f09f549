"""Git IO for the daemon: worktrees per run (diffs, hunks and commits come with later parts)."""
