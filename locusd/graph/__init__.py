"""The knowledge graph in the daemon: the repository's structure and history, and the file
hints ranked from them (docs/graph.md)."""
