"""locusd: the local daemon, the agent runtime and the `locus` CLI (see docs/architecture.md)."""

#: The one place the version is written: pyproject.toml reads it from here (a literal, so
#: ``import locusd`` costs no importlib.metadata lookup, ~30 ms of ``locus --version``).
__version__ = "0.1.0"
