"""The agent runtime: loop, tools, providers (being built in issue 3)."""
