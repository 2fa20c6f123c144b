"""The web chat page's WeChat side builds pushes the channel accepts and refuses replies it must not trust."""

from __future__ import annotations

import pytest

from bot.wechat.crypto import MessageCrypto
from bot.wechat.demo import DEMO_ACCOUNT, DEMO_AES_KEY, DEMO_APPID, DEMO_TOKEN, is_loopback_url
from bot.wechat.envelope import open_push, seal_reply, verify_query
from bot.wechat.errors import MalformedMessage, SignatureError
from bot.wechat.simulator import WeChatServerSimulator
from bot.wechat.xmlsafe import to_xml

NOW = 1_800_000_000


def _crypto() -> MessageCrypto:
    return MessageCrypto(DEMO_TOKEN, DEMO_AES_KEY, DEMO_APPID)


def _simulator(safe: bool = True) -> WeChatServerSimulator:
    return WeChatServerSimulator(DEMO_TOKEN, DEMO_ACCOUNT, _crypto() if safe else None, clock=lambda: NOW)


@pytest.mark.parametrize("safe", [True, False], ids=["safe", "plain"])
def test_text_push_is_verified_and_opened_by_the_channel_envelope(safe: bool) -> None:
    push = _simulator(safe).text_push("o_webchat_abcdefgh", "阳台漏水了")
    verify_query(push.query, DEMO_TOKEN, NOW)
    opened = open_push(push.query, push.body, _crypto(), 64 * 1024)
    assert opened.encrypted is safe
    assert opened.fields["Content"] == "阳台漏水了" and opened.fields["FromUserName"] == "o_webchat_abcdefgh"
    assert opened.fields["ToUserName"] == DEMO_ACCOUNT and opened.fields["MsgType"] == "text"


def test_encrypted_passive_reply_is_opened_and_success_means_none() -> None:
    simulator = _simulator()
    push = simulator.text_push("o_webchat_abcdefgh", "你好")
    opened = open_push(push.query, push.body, _crypto(), 64 * 1024)
    reply = to_xml({"ToUserName": "o_webchat_abcdefgh", "FromUserName": DEMO_ACCOUNT, "CreateTime": NOW,
                    "MsgType": "text", "Content": "您好！"})
    assert simulator.open_reply(seal_reply(opened, reply, _crypto(), NOW, "n1"), push) == "您好！"
    assert simulator.open_reply("success", push) is None


def test_reply_with_a_forged_msg_signature_or_in_plaintext_to_a_safe_push_is_refused() -> None:
    simulator = _simulator()
    push = simulator.text_push("o_webchat_abcdefgh", "你好")
    reply = to_xml({"MsgType": "text", "Content": "假的"})
    forged = to_xml({"Encrypt": _crypto().encrypt(reply), "MsgSignature": "0" * 40, "TimeStamp": NOW, "Nonce": "n"})
    with pytest.raises(SignatureError):
        simulator.open_reply(forged, push)
    with pytest.raises(MalformedMessage):
        simulator.open_reply(reply, push)


@pytest.mark.parametrize("url, local", [
    ("http://127.0.0.1:5098", True), ("http://localhost:8098/", True), ("http://[::1]:80", True),
    ("https://api.weixin.qq.com", False), ("http://127.0.0.1.evil.example", False), ("not a url", False),
])
def test_only_this_machine_counts_as_a_local_fake_api(url: str, local: bool) -> None:
    assert is_loopback_url(url) is local
