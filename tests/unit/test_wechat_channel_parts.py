"""The channel's parts: rendering and splitting replies, numbered options, routes, dedupe and the 5-second responder."""

from __future__ import annotations

import asyncio
import time
from typing import List, Sequence, Tuple

import pytest

from bot import messages
from bot.wechat import inbound
from bot.wechat.dedupe import MemoryDedupeStore, Outcome, RedisDedupeStore, wait_for_outcome
from bot.wechat.messages import parse_message
from bot.wechat.options import MemoryOptionStore, RedisOptionStore, choose
from bot.wechat.render import MAX_PART_BYTES, MAX_PART_CHARS, Option, render_messages, split_reply
from bot.wechat.responder import Responder
from bot.wechat.xmlsafe import to_xml

OPTIONS = (Option("是的", "/affirm"), Option("不是", "/deny"), Option("转人工", "/human_handoff"))


class Clock:
    """Seconds that only move when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# Rendering --------------------------------------------------------------------------------------

def test_bot_messages_are_joined_with_a_blank_line_and_buttons_become_numbered_options() -> None:
    rendered = render_messages([
        {"recipient_id": "u", "text": "您的地址是3号楼2单元501吗？"},
        {"recipient_id": "u", "text": "请选择：", "buttons": [
            {"title": "是的", "payload": "/affirm"}, {"title": "不是", "payload": "/deny"}]},
    ])
    assert rendered.text == f"您的地址是3号楼2单元501吗？\n\n请选择：\n1. 是的\n2. 不是\n{messages.WECHAT_OPTIONS_HINT}"
    assert rendered.options == (Option("是的", "/affirm"), Option("不是", "/deny"))


def test_rendering_skips_empty_messages_and_shows_image_links() -> None:
    rendered = render_messages([{"text": "  "}, {"image": "https://example.org/map.png"}, {"custom": {"a": 1}}])
    assert rendered.text == "https://example.org/map.png"
    assert rendered.options == ()


def test_a_short_reply_stays_in_one_part() -> None:
    assert split_reply("  你好\n再见 ") == ["你好\n再见"]
    assert split_reply("   ") == []


def test_a_long_reply_is_split_at_line_breaks_within_both_limits() -> None:
    lines = [f"第{i}行：" + "请注意安全，关闭阀门。" * 3 for i in range(60)]
    parts = split_reply("\n".join(lines))
    assert len(parts) > 1
    assert "\n".join(parts) == "\n".join(lines)
    for part in parts:
        assert len(part) <= MAX_PART_CHARS and len(part.encode("utf-8")) <= MAX_PART_BYTES


def test_a_single_overlong_line_is_cut_by_bytes_as_well_as_characters() -> None:
    line = "漏" * 1500  # 3 bytes each: the byte limit bites before the character limit
    parts = split_reply(line)
    assert "".join(parts) == line
    assert all(len(p.encode("utf-8")) <= MAX_PART_BYTES and len(p) <= MAX_PART_CHARS for p in parts)
    ascii_parts = split_reply("a" * 1500)
    assert [len(p) for p in ascii_parts] == [600, 600, 300]


# Numbered options -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, payload", [
    ("1", "/affirm"), (" 2 ", "/deny"), ("３", "/human_handoff"), ("2.", "/deny"), ("第1个", "/affirm"), ("1号", None),
    ("4", None), ("0", None), ("12", None), ("1号楼", None), ("好的", None),
])
def test_a_bare_number_picks_the_offered_option(text: str, payload: str) -> None:
    assert choose(text, OPTIONS) == payload


def test_without_an_offer_a_number_is_just_text() -> None:
    assert choose("1", ()) is None


async def test_memory_options_expire_and_are_replaced() -> None:
    clock = Clock()
    store = MemoryOptionStore(ttl=60, clock=clock)
    await store.remember("u1", OPTIONS)
    assert await store.recall("u1") == list(OPTIONS)
    assert await store.recall("u2") == []
    await store.remember("u1", ())
    assert await store.recall("u1") == []
    await store.remember("u1", OPTIONS[:1])
    clock.now += 61
    assert await store.recall("u1") == []


async def test_redis_options_round_trip(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        store = RedisOptionStore(client, prefix=f"test:options:{time.time_ns()}")
        await store.remember("u1", OPTIONS)
        assert await store.recall("u1") == list(OPTIONS)
        await store.remember("u1", [])
        assert await store.recall("u1") == []
    finally:
        await client.close()


# Routes -----------------------------------------------------------------------------------------

def _message(msg_type: str, **fields: str) -> inbound.IncomingMessage:
    doc = {"ToUserName": "gh_1", "FromUserName": "o1", "CreateTime": 1700000000, "MsgType": msg_type, **fields}
    if msg_type != "event":
        doc["MsgId"] = 1
    from bot.wechat.xmlsafe import parse_xml

    return parse_message(parse_xml(to_xml(doc).encode()))


@pytest.mark.parametrize("msg_type, fields, expected", [
    ("text", {"Content": " 家里\u200b漏水了 "}, inbound.ToAssistant("家里漏水了")),
    ("text", {"Content": "\u200b "}, inbound.Reply(messages.EMPTY_MESSAGE)),
    ("voice", {"MediaId": "m", "Format": "amr", "Recognition": "查进度"}, inbound.ToAssistant("查进度")),
    ("voice", {"MediaId": "m", "Format": "amr"}, inbound.Reply(messages.WECHAT_VOICE_UNRECOGNISED)),
    ("image", {"PicUrl": "http://p", "MediaId": "m"}, inbound.AttachImage("m", "http://p")),
    ("location", {"Location_X": "39.1", "Location_Y": "117.2", "Scale": "15", "Label": "吉利花园"},
     inbound.Reply(messages.wechat_location_hint("吉利花园"))),
    ("event", {"Event": "subscribe"}, inbound.Subscribed()),
    ("event", {"Event": "unsubscribe"}, inbound.Unsubscribed()),
    ("event", {"Event": "CLICK", "EventKey": "REPORT_LEAK"}, inbound.ToAssistant("/report_leak", typed=False)),
    ("event", {"Event": "CLICK", "EventKey": "WHAT"}, inbound.Reply(messages.WECHAT_UNKNOWN_MENU)),
    ("event", {"Event": "VIEW", "EventKey": "https://example.org"}, inbound.Silent()),
    ("event", {"Event": "TEMPLATESENDJOBFINISH"}, inbound.Silent()),
    ("shortvideo", {"MediaId": "m"}, inbound.Reply(messages.WECHAT_UNSUPPORTED)),
])
def test_each_kind_of_push_takes_its_route(msg_type: str, fields: dict, expected: inbound.Route) -> None:
    assert inbound.route(_message(msg_type, **fields)) == expected


def test_every_menu_key_of_the_menu_file_has_a_flow() -> None:
    import json

    from bot.config import PROJECT_ROOT

    menu = json.loads((PROJECT_ROOT / "data" / "wechat" / "menu.json").read_text(encoding="utf-8"))
    keys = {leaf["key"] for button in menu["button"] for leaf in button.get("sub_button") or [button]}
    assert keys == set(inbound.MENU_PAYLOADS)


# Dedupe -----------------------------------------------------------------------------------------

async def test_memory_dedupe_grants_one_claim_per_key_until_it_expires() -> None:
    clock = Clock()
    store = MemoryDedupeStore(ttl=60, clock=clock)
    assert await store.claim("k") is True
    assert await store.claim("k") is False
    assert await store.outcome("k") is None
    await store.settle("k", Outcome("答复"))
    assert await store.outcome("k") == Outcome("答复")
    clock.now += 61
    assert await store.claim("k") is True


async def test_redis_dedupe_grants_one_claim_across_clients(redis_url: str) -> None:
    import redis.asyncio as aioredis

    a, b = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
    try:
        prefix = f"test:dedupe:{time.time_ns()}"
        one, two = RedisDedupeStore(a, prefix=prefix), RedisDedupeStore(b, prefix=prefix)
        claims = await asyncio.gather(*(store.claim("msg-1") for store in (one, two, one, two)))
        assert sorted(claims) == [False, False, False, True]
        assert await two.outcome("msg-1") is None
        await one.settle("msg-1", Outcome(None))
        assert await two.outcome("msg-1") == Outcome(None)
        await one.settle("msg-1", Outcome("好的"))
        assert await two.outcome("msg-1") == Outcome("好的")
    finally:
        await a.close()
        await b.close()


async def test_redis_dedupe_fails_open_when_redis_is_down() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    try:
        store = RedisDedupeStore(client)
        assert await store.claim("k") is True  # the resident is answered even without Redis
        assert await store.outcome("k") is None
    finally:
        await client.close()


async def test_waiting_for_an_outcome_gives_up_at_the_deadline() -> None:
    store = MemoryDedupeStore()
    await store.claim("k")
    started = time.monotonic()
    assert await wait_for_outcome(store, "k", time.monotonic() + 0.2) is None
    assert 0.15 < time.monotonic() - started < 0.5


# Responder --------------------------------------------------------------------------------------

class Sent:
    """Collects customer-service deliveries."""

    def __init__(self) -> None:
        self.parts: List[Tuple[str, Sequence[str]]] = []

    async def __call__(self, openid: str, parts: Sequence[str]) -> None:
        self.parts.append((openid, list(parts)))


def _work(text: str, delay: float = 0.0):  # type: ignore[no-untyped-def]
    async def work() -> str:
        await asyncio.sleep(delay)
        return text

    return work


async def test_quick_work_is_answered_passively() -> None:
    sent = Sent()
    responder = Responder(MemoryDedupeStore(), sent)
    assert await responder.respond("k", "o1", _work("好的"), time.monotonic() + 1) == "好的"
    assert sent.parts == []


async def test_slow_work_is_answered_success_and_delivered_once_later() -> None:
    sent = Sent()
    responder = Responder(MemoryDedupeStore(), sent)
    assert await responder.respond("k", "o1", _work("久等了", 0.3), time.monotonic() + 0.1) is None
    await responder.drain(2)
    assert sent.parts == [("o1", ["久等了"])]


async def test_a_cancelled_request_still_gets_its_reply_delivered() -> None:
    sent = Sent()
    responder = Responder(MemoryDedupeStore(), sent)
    request = asyncio.create_task(responder.respond("k", "o1", _work("答复", 0.2), time.monotonic() + 5))
    await asyncio.sleep(0.05)
    request.cancel()  # WeChat hung up
    with pytest.raises(asyncio.CancelledError):
        await request
    await responder.drain(2)
    assert sent.parts == [("o1", ["答复"])]


async def test_quick_but_long_work_goes_out_in_order_through_customer_service() -> None:
    sent = Sent()
    responder = Responder(MemoryDedupeStore(), sent)
    text = "\n".join(["一行说明文字。" * 20] * 10)
    assert await responder.respond("k", "o1", _work(text), time.monotonic() + 1) is None
    await responder.drain(2)
    assert len(sent.parts) == 1 and "\n".join(sent.parts[0][1]) == text


async def test_failing_work_answers_with_an_apology() -> None:
    async def broken() -> str:
        raise RuntimeError("boom")

    responder = Responder(MemoryDedupeStore(), Sent())
    assert await responder.respond("k", "o1", broken, time.monotonic() + 1) == messages.TURN_FAILED


async def test_empty_work_is_answered_success_with_nothing_delivered() -> None:
    sent = Sent()
    responder = Responder(MemoryDedupeStore(), sent)
    assert await responder.respond("k", "o1", _work(""), time.monotonic() + 1) is None
    await responder.drain(1)
    assert sent.parts == []
