"""Dispatch: atomic claims with leases, heartbeats, the reaper, and wake-ups of idle workers."""
