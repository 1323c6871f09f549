"""The daemon's knowledge graph of a repository: structure, history, hints (docs/graph.md)."""
