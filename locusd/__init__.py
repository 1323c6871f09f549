"""locusd: the local daemon, the agent runtime and the `locus` CLI (see docs/architecture.md)."""

import importlib.metadata

try:
    __version__ = importlib.metadata.version("locus")
except importlib.metadata.PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0.0.0+unknown"
