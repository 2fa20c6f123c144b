"""WeChat's side of the server URL: signed (and in safe mode encrypted) pushes out, replies opened.

What the WeChat server does for an account: build the push XML for a resident's message, sign the query,
encrypt the body in safe mode, and read the (encrypted) passive reply it gets back. No HTTP here; the web
chat page (bot/channels/webchat.py) sends what this builds. The other direction of bot/wechat/envelope.py.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

from bot.wechat.crypto import MessageCrypto
from bot.wechat.errors import MalformedMessage, SignatureError
from bot.wechat.signature import signature, verify
from bot.wechat.xmlsafe import parse_xml, to_xml

__all__ = ["OutgoingPush", "WeChatServerSimulator"]


@dataclass(frozen=True)
class OutgoingPush:
    """A push ready to POST: its query (signature, timestamp, nonce, …) and body."""

    query: Dict[str, str]
    body: bytes


@dataclass
class WeChatServerSimulator:
    """Signs pushes and opens replies for one account, as the WeChat server would (safe mode with an AES key)."""

    token: str = field(repr=False)
    account: str
    crypto: Optional[MessageCrypto] = None
    clock: Callable[[], float] = time.time

    def text_push(self, openid: str, content: str, msg_id: Optional[str] = None) -> OutgoingPush:
        """The push WeChat sends when `openid` types `content`."""
        xml = to_xml({"ToUserName": self.account, "FromUserName": openid, "CreateTime": int(self.clock()),
                      "MsgType": "text", "Content": content,
                      "MsgId": msg_id or str(secrets.randbelow(9 * 10**18) + 10**18)})
        return self.push(xml, openid)

    def push(self, xml: str, openid: str) -> OutgoingPush:
        """Sign `xml` (encrypting it first in safe mode) the way WeChat does."""
        stamp = str(int(self.clock()))
        nonce = secrets.token_hex(5)
        query = {"signature": signature(self.token, stamp, nonce), "timestamp": stamp, "nonce": nonce,
                 "openid": openid}
        if self.crypto is None:
            return OutgoingPush(query, xml.encode("utf-8"))
        encrypt = self.crypto.encrypt(xml)
        query.update(encrypt_type="aes", msg_signature=signature(self.token, stamp, nonce, encrypt))
        return OutgoingPush(query, to_xml({"ToUserName": self.account, "Encrypt": encrypt}).encode("utf-8"))

    def open_reply(self, body: str, push: OutgoingPush) -> Optional[str]:
        """The text of a passive reply (None for `success`); SignatureError/DecryptError/MalformedMessage."""
        if body.strip() in ("", "success"):
            return None
        fields = parse_xml(body.encode("utf-8"))
        if "Encrypt" in fields:
            if self.crypto is None:
                raise MalformedMessage("encrypted reply to a plaintext push", field="Encrypt")
            if not verify(self.token, fields.get("MsgSignature", ""), fields.get("TimeStamp", ""),
                          fields.get("Nonce", ""), fields["Encrypt"]):
                raise SignatureError("reply MsgSignature does not match")
            fields = parse_xml(self.crypto.decrypt(fields["Encrypt"]).encode("utf-8"))
        elif push.query.get("encrypt_type") == "aes":
            raise MalformedMessage("plaintext reply to an encrypted push", field="Encrypt")
        if fields.get("MsgType") != "text":
            raise MalformedMessage(f"unexpected reply type {fields.get('MsgType')!r}", field="MsgType")
        return fields.get("Content", "")
