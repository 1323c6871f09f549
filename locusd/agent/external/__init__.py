"""Other agents inside Locus: an ACP agent (Claude Code's adapter, Codex's, Gemini CLI, any
other) run as a run's agent in the run's sandbox, Locus its ACP client (docs/acp.md)."""
