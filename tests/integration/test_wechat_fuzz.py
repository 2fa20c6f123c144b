"""The WeChat endpoint fuzzed (hypothesis) for a bounded time: whatever arrives, it answers below 500 and keeps serving.

Three kinds of input, each a few hundred examples: garbage (random query and body bytes), well-signed plaintext
pushes with random fields, and well-signed safe-mode pushes whose encrypted XML is random. The channel runs on a
real port with a stub assistant and the fake WeChat API; after each batch a normal message must still be answered.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Iterator, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.wechat import WeChatInput
from bot.devtools.fake_wechat import FakeWeChat, running_fake_wechat
from bot.wechat.runtime import WeChatConfig
from bot.wechat.xmlsafe import to_xml
from tests.helpers import InThread
from tests.wechat_kit import (
    ACCOUNT,
    AES_KEY,
    APPID,
    OPENID,
    SECRET,
    TOKEN,
    ServedChannel,
    StubAssistant,
    envelope,
    serve_channel,
    signed_query,
    text_xml,
)

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
field_names = st.sampled_from(["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event",
                               "EventKey", "PicUrl", "MediaId", "Recognition", "Location_X", "Label", "Encrypt"])
msg_types = st.sampled_from(["text", "image", "voice", "video", "location", "link", "event", "shortvideo", "", "x"])


@asynccontextmanager
async def _channel() -> AsyncIterator[ServedChannel]:
    async with running_fake_wechat(FakeWeChat(appid=APPID, secret=SECRET)) as api:
        config = WeChatConfig(token=TOKEN, appid=APPID, secret=SECRET, aes_key=AES_KEY, api_base=api.base_url,
                              passive_seconds=0.5, sender_rate_per_minute=0)
        async with serve_channel(WeChatInput(config), StubAssistant()) as served:
            yield served


class Served(InThread):
    """The channel on a loop of its own thread, so hypothesis' synchronous tests can call it."""

    def __init__(self) -> None:
        super().__init__(_channel, timeout=30)
        self.channel: ServedChannel = self.value

    def post(self, query: Dict[str, str], body: bytes) -> Tuple[int, str]:
        async def call() -> Tuple[int, str]:
            async with self.channel.http.post(self.channel.url, params=query, data=body,
                                              headers={"Content-Type": "text/xml"}) as resp:
                return resp.status, await resp.text()
        return self.run(call())

    def still_answers(self) -> None:
        status, body, _ = self.run(self.channel.push(text_xml("你好"), "safe"))
        assert status == 200 and body != "success", body


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    server = Served()
    yield server
    server.close()


@FUZZ
@given(query=st.dictionaries(st.sampled_from(["signature", "timestamp", "nonce", "openid", "encrypt_type",
                                              "msg_signature", "echostr"]), text, max_size=7),
       body=st.binary(max_size=2000))
def test_garbage_is_refused_below_500(served: Served, query: Dict[str, str], body: bytes) -> None:
    status, _ = served.post(query, body)
    assert status < 500, status


@FUZZ
@given(fields=st.dictionaries(field_names, text, max_size=8), msg_type=msg_types)
def test_signed_plaintext_pushes_with_random_fields_get_an_answer_below_500(
        served: Served, fields: Dict[str, str], msg_type: str) -> None:
    doc = {"ToUserName": ACCOUNT, "FromUserName": OPENID, "MsgType": msg_type, **fields}
    try:
        xml = to_xml(doc)
    except ValueError:
        return  # text XML cannot carry (control characters): WeChat could not send it either
    status, _ = served.post(signed_query(), xml.encode("utf-8"))
    assert status < 500, status


@FUZZ
@given(inner=st.one_of(text, st.dictionaries(field_names, text, max_size=8)), msg_type=msg_types)
def test_signed_safe_mode_pushes_with_random_encrypted_xml_get_an_answer_below_500(
        served: Served, inner: Any, msg_type: str) -> None:
    if isinstance(inner, dict):
        try:
            inner = to_xml({"ToUserName": ACCOUNT, "FromUserName": OPENID, "MsgType": msg_type, **inner})
        except ValueError:
            return
    query, body = envelope(inner, "safe")
    status, _ = served.post(query, body)
    assert status < 500, status


def test_after_the_fuzzing_a_resident_is_still_answered(served: Served) -> None:
    served.still_answers()
