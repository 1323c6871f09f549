"""A cloud's URL as people write it: one spelling per cloud, and what is wrong with one in words
that name the fix. Shared by ``locus login`` and ``[daemon] cloud_url``; no imports beyond the
standard library, so the config can use it cheaply."""

from __future__ import annotations

from urllib.parse import urlsplit


def normalise_url(url: str) -> str:
    """One spelling per cloud, so ``http://h:8420/`` and ``http://h:8420`` are the same key."""
    return url.strip().rstrip("/")


def url_problem(url: str) -> str | None:
    """What is wrong with a cloud URL a person gave (``127.0.0.1:8420`` lacks its scheme), in
    words that name the fix; None when it is an http(s) URL with a host."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    if "://" not in text:
        return f"{text!r} has no scheme: write http://{text} (or https://…)"
    return f"{text!r} is not an http:// or https:// URL with a host (e.g. http://127.0.0.1:8420)"
