"""The one byte string a write's JSON body is sent as.

The cloud hashes it to tell a replay from a reused ``Idempotency-Key``, and the audit log
(:mod:`locusd.privacy`) records its sha256: both must see exactly the bytes on the wire, UTF-8
and all, so both use this.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def canonical(body: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, non-ASCII as UTF-8 (not ``\\u`` escapes)."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
