"""Test kit for the channels: WeChat pushes signed (and encrypted) like WeChat's, a stub assistant, a served channel."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Dict, List, Mapping, Optional, Tuple, Union

import aiohttp
from rasa.core.channels.channel import UserMessage
from sanic import Blueprint, Sanic

from bot.channels.wechat import WeChatInput
from bot.wechat.crypto import MessageCrypto
from bot.wechat.signature import signature, verify
from bot.wechat.xmlsafe import parse_xml, to_xml

TOKEN = "hg-test-token-5f1c"
APPID = "wx5d2f8e1a9b0c3d4e"
SECRET = "app-secret-9f8e7d6c5b4a"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
ACCOUNT = "gh_0a1b2c3d4e5f"
OPENID = "oResident-channel-0001"

LONG_LINE = "请按以下步骤处理：先关闭进水阀门，再清理地面积水，注意防滑，远离插座。"

from tests.helpers import serving


def crypto(token: str = TOKEN, aes_key: str = AES_KEY, appid: str = APPID) -> MessageCrypto:
    """The crypto WeChat's side uses for the test account (or another one)."""
    return MessageCrypto(token, aes_key, appid)


def message_xml(msg_type: str, openid: str = OPENID, create_time: Optional[int] = None,
                msg_id: Optional[str] = None, to_user: str = ACCOUNT, **fields: Union[str, int]) -> str:
    """A push as WeChat sends it; events carry no MsgId."""
    doc: Dict[str, Union[str, int]] = {
        "ToUserName": to_user, "FromUserName": openid, "CreateTime": create_time or int(time.time()),
        "MsgType": msg_type}
    doc.update(fields)
    if msg_type != "event":
        doc["MsgId"] = msg_id or str(uuid.uuid4().int)[:19]
    return to_xml(doc)


def text_xml(content: str, openid: str = OPENID, msg_id: Optional[str] = None) -> str:
    """A text push."""
    return message_xml("text", openid, msg_id=msg_id, Content=content)


def event_xml(event: str, openid: str = OPENID, create_time: Optional[int] = None, **fields: str) -> str:
    """An event push."""
    return message_xml("event", openid, create_time=create_time, Event=event, **fields)


def signed_query(token: str = TOKEN, timestamp: Optional[str] = None, nonce: Optional[str] = None) -> Dict[str, str]:
    """The query WeChat adds to every request."""
    stamp = timestamp or str(int(time.time()))
    nonce = nonce or uuid.uuid4().hex[:10]
    return {"signature": signature(token, stamp, nonce), "timestamp": stamp, "nonce": nonce, "openid": OPENID}


def envelope(xml: str, mode: str, query: Optional[Dict[str, str]] = None,
             box: Optional[MessageCrypto] = None, token: str = TOKEN,
             to_user: str = ACCOUNT) -> Tuple[Dict[str, str], bytes]:
    """Query and body for `xml` in plaintext, compatible or safe mode (the test account's, or `token`/`box`'s
    account `to_user`)."""
    query = dict(query or signed_query(token))
    if mode == "plain":
        return query, xml.encode("utf-8")
    encrypt = (box or crypto()).encrypt(xml)
    query.update(encrypt_type="aes",
                 msg_signature=signature(token, query["timestamp"], query["nonce"], encrypt))
    if mode == "safe":
        return query, to_xml({"ToUserName": to_user, "Encrypt": encrypt}).encode("utf-8")
    assert mode == "compatible"
    fields = parse_xml(xml.encode("utf-8"))
    return query, to_xml({**fields, "Encrypt": encrypt}).encode("utf-8")


def open_reply(body: str, query: Mapping[str, str], box: Optional[MessageCrypto] = None,
               token: str = TOKEN) -> Dict[str, str]:
    """The fields of a reply; an encrypted one must carry a valid MsgSignature and decrypt for our appid (or
    `token`/`box`'s account)."""
    fields = parse_xml(body.encode("utf-8"))
    if "Encrypt" not in fields:
        assert query.get("encrypt_type") != "aes", "a push in an AES mode must be answered encrypted"
        return fields
    assert verify(token, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
    return parse_xml((box or crypto()).decrypt(fields["Encrypt"]).encode("utf-8"))


BUTTONS = [{"title": "是的，就用这个", "payload": "/affirm"}, {"title": "不是，重新填写", "payload": "/deny"},
           {"title": "转人工", "payload": "/human_handoff"}]


@dataclass
class StubAssistant:
    """Behaves like the assistant for the channel: echoes, offers buttons, opens "tickets", can be slow."""

    slow_seconds: float = 1.5
    turns: List[Tuple[str, str]] = field(default_factory=list)
    tickets: int = 0

    async def __call__(self, message: UserMessage) -> None:
        self.turns.append((message.sender_id, message.text))
        out = message.output_channel
        sender = message.sender_id
        text = message.text or ""
        if text == "慢一点":
            await asyncio.sleep(self.slow_seconds)
            await out.send_text_message(sender, "让您久等了，这是答复。")
        elif text == "要按钮":
            await out.send_text_message(sender, "您的地址是吉利花园3号楼2单元501吗？")
            await out.send_text_with_buttons(sender, "请选择：", BUTTONS)
        elif text == "长回复":
            await out.send_text_message(sender, "\n".join(f"{i:02d}. {LONG_LINE}" for i in range(40)))
        elif text == "静默":
            return
        elif text == "坏了":
            raise RuntimeError("the assistant crashed")
        elif "漏水" in text:
            await asyncio.sleep(0.3)  # long enough for the copies of a retried push to overlap
            self.tickets += 1
            await out.send_text_message(sender, f"已为您登记漏水报修，工单号：HG-20261128-{self.tickets:04d}。")
        elif text.startswith("/"):
            await out.send_text_message(sender, f"收到指令 {text}")
        else:
            await out.send_text_message(sender, f"您说：{text}")
            await out.send_text_message(sender, "还有什么可以帮您？")


@dataclass
class ServedChannel:
    """A channel served by a real Sanic server on 127.0.0.1, and a client to talk to it."""

    url: str
    channel: WeChatInput
    assistant: Any
    http: aiohttp.ClientSession

    async def push(self, xml: str, mode: str = "plain",
                   query: Optional[Dict[str, str]] = None) -> Tuple[int, str, Dict[str, str]]:
        """POST a push; returns the status, the raw answer and the query used."""
        query, body = envelope(xml, mode, query)
        async with self.http.post(self.url, params=query, data=body,
                                  headers={"Content-Type": "text/xml"}) as resp:
            return resp.status, await resp.text(), query

    async def reply_to(self, xml: str, mode: str = "plain") -> Optional[str]:
        """The passive reply's Content for a push, or None when the answer was `success`."""
        status, body, query = await self.push(xml, mode)
        assert status == 200, body
        if body == "success":
            return None
        fields = open_reply(body, query)
        assert fields["MsgType"] == "text"
        assert fields["ToUserName"] == OPENID and fields["FromUserName"] == ACCOUNT
        return fields["Content"]


@asynccontextmanager
async def serve_blueprint(blueprint: Blueprint, url_prefix: str) -> AsyncIterator[str]:
    """Serve one channel blueprint under `url_prefix` (as Rasa mounts it) on a free port; yields the base URL."""
    app = Sanic(f"channel_test_{uuid.uuid4().hex[:12]}")
    app.config.ACCESS_LOG = False
    app.blueprint(blueprint, url_prefix=url_prefix)
    try:
        async with serving(app) as port:
            yield f"http://127.0.0.1:{port}{url_prefix}"
    finally:
        Sanic._app_registry.pop(app.name, None)


@asynccontextmanager
async def serve_channel(channel: WeChatInput, assistant: Callable[[UserMessage], Any]) -> AsyncIterator[ServedChannel]:
    """Serve `channel`'s blueprint (as Rasa mounts it) with `assistant` as the message handler."""
    async with serve_blueprint(channel.blueprint(assistant), "/webhooks/wechat") as base:
        async with aiohttp.ClientSession() as http:
            yield ServedChannel(f"{base}/webhook", channel, assistant, http)


async def eventually(check: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> None:
    """Wait until `check()` holds; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)
