"""The daemon's runs: local state, the run manager, and the cloud worker."""
