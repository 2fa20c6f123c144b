"""The envelope of a WeChat push: signed query, plaintext/compatible/safe-mode body, and the matching reply.

Every request carries `signature` = SHA1 over [token, timestamp, nonce]; pushes in compatible or safe
mode add `encrypt_type=aes` and `msg_signature` over [token, timestamp, nonce, Encrypt]. In those modes
the message is the decrypted `Encrypt` (any plaintext copy beside it in compatible mode is ignored) and
the reply is encrypted back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional

from bot.wechat.crypto import MessageCrypto
from bot.wechat.errors import MalformedMessage, SignatureError, WeChatError
from bot.wechat.signature import check_fresh, verify
from bot.wechat.xmlsafe import parse_xml

__all__ = ["Push", "SafeModeUnavailable", "TIMESTAMP_WINDOW", "open_push", "seal_reply", "verify_query"]

TIMESTAMP_WINDOW = 300  # seconds either side: a replayed or badly delayed request is refused


class SafeModeUnavailable(WeChatError):
    """An encrypted push arrived but no EncodingAESKey (or appid) is configured to read it."""

    code = "wechat_safe_mode_unavailable"


@dataclass(frozen=True)
class Push:
    """The fields of a pushed message and whether it came (and must be answered) encrypted."""

    fields: Dict[str, str]
    encrypted: bool


def verify_query(query: Mapping[str, str], token: str, now: float, window: int = TIMESTAMP_WINDOW) -> None:
    """Check `signature` over [token, timestamp, nonce] and the timestamp's freshness; SignatureError/StaleTimestamp."""
    timestamp = query.get("timestamp", "")
    nonce = query.get("nonce", "")
    if not verify(token, query.get("signature", ""), timestamp, nonce):
        raise SignatureError("signature does not match")
    check_fresh(timestamp, now, window)


def open_push(query: Mapping[str, str], body: bytes, crypto: Optional[MessageCrypto], max_bytes: int) -> Push:
    """The message fields of a push whose query was verified; decrypts (after `msg_signature`) in AES modes."""
    outer = parse_xml(body, max_bytes)
    if query.get("encrypt_type", "raw").lower() != "aes":
        return Push(outer, encrypted=False)
    encrypt = outer.get("Encrypt")
    if not encrypt:
        raise MalformedMessage("encrypt_type=aes without <Encrypt>", field="Encrypt")
    if crypto is None:
        raise SafeModeUnavailable("encrypted push, but no EncodingAESKey/appid configured")
    xml = crypto.decrypt_verified(query.get("msg_signature", ""), query.get("timestamp", ""),
                                  query.get("nonce", ""), encrypt)
    return Push(parse_xml(xml.encode("utf-8"), max_bytes), encrypted=True)


def seal_reply(push: Push, xml: str, crypto: Optional[MessageCrypto], timestamp: int, nonce: str) -> str:
    """The reply body for `push`: `xml` itself, or its encrypted envelope when the push was encrypted."""
    if not push.encrypted:
        return xml
    if crypto is None:  # open_push never yields an encrypted push without crypto
        raise SafeModeUnavailable("cannot encrypt the reply")
    return crypto.reply_envelope(xml, timestamp, nonce)
