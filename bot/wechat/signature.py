"""Request signatures of the WeChat server (SHA1 over the sorted parts) and timestamp freshness."""

from __future__ import annotations

import hashlib
import hmac

from bot.wechat.errors import StaleTimestamp

__all__ = ["check_fresh", "signature", "verify"]


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    """Lowercase hex SHA1 of the sorted concatenation of token, timestamp, nonce (and e.g. Encrypt)."""
    parts = sorted([token, timestamp, nonce, *extra])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()


def verify(token: str, expected: str, timestamp: str, nonce: str, *extra: str) -> bool:
    """Whether `expected` is the signature of these parts, compared in constant time."""
    if not token or not expected:
        return False
    actual = signature(token, timestamp, nonce, *extra)
    return hmac.compare_digest(actual.encode("ascii"), expected.encode("utf-8", "replace"))


def check_fresh(timestamp: str, now: float, window: int = 300) -> None:
    """Raise StaleTimestamp unless `timestamp` is whole seconds within `window` of `now` (either side)."""
    # isdecimal() alone would let through non-ASCII digits such as "١٢٣"; WeChat only sends ASCII.
    if not (timestamp.isascii() and timestamp.isdecimal()) or len(timestamp) > 12:
        raise StaleTimestamp(timestamp, now, window)
    if abs(now - int(timestamp)) > window:
        raise StaleTimestamp(timestamp, now, window)
