"""The adversarial suite: scripted hostile models against the real runner and daemon (kit.py)."""

from tests.adversarial.kit import canaries

__all__ = ["canaries"]
