"""Incoming WeChat XML is parsed safely into typed messages; replies render safely; signatures and times are checked."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, Optional

import pytest

from bot.wechat.errors import MalformedMessage, StaleTimestamp
from bot.wechat.messages import (
    ClickEvent,
    ImageMessage,
    IncomingMessage,
    LinkMessage,
    LocationMessage,
    SubscribeEvent,
    TextMessage,
    UnknownMessage,
    UnsubscribeEvent,
    ViewEvent,
    VoiceMessage,
    parse_message,
    render_text_reply,
)
from bot.wechat.signature import check_fresh, signature, verify
from bot.wechat.xmlsafe import parse_xml, to_xml

ACCOUNT = "gh_0a1b2c3d4e5f"
OPENID = "oAbC-resident-0001"
COMMON = (f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
          "<CreateTime>1700000000</CreateTime>")
COMMON_VALUES = {"to_user": ACCOUNT, "from_user": OPENID, "create_time": 1700000000}


def _xml(body: str) -> bytes:
    return f"<xml>{COMMON}{body}</xml>".encode("utf-8")


def _parse(body: str) -> IncomingMessage:
    return parse_message(parse_xml(_xml(body)))


MESSAGES = {
    "text": (
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[楼道灯坏了]]></Content><MsgId>1234567890123456</MsgId>",
        TextMessage(**COMMON_VALUES, msg_id="1234567890123456", content="楼道灯坏了"),
    ),
    "voice": (
        "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[media-1]]></MediaId><Format><![CDATA[amr]]></Format>"
        "<Recognition><![CDATA[我要报修]]></Recognition><MsgId>22</MsgId>",
        VoiceMessage(**COMMON_VALUES, msg_id="22", media_id="media-1", format="amr", recognition="我要报修"),
    ),
    "voice without recognition": (
        "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[media-2]]></MediaId><Format><![CDATA[speex]]></Format>"
        "<MsgId>23</MsgId>",
        VoiceMessage(**COMMON_VALUES, msg_id="23", media_id="media-2", format="speex", recognition=None),
    ),
    "image": (
        "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.qpic.cn/x.jpg]]></PicUrl>"
        "<MediaId><![CDATA[media-3]]></MediaId><MsgId>24</MsgId>",
        ImageMessage(**COMMON_VALUES, msg_id="24", pic_url="http://mmbiz.qpic.cn/x.jpg", media_id="media-3"),
    ),
    "location": (
        "<MsgType><![CDATA[location]]></MsgType><Location_X>31.230416</Location_X><Location_Y>121.473701</Location_Y>"
        "<Scale>15</Scale><Label><![CDATA[上海市黄浦区人民广场]]></Label><MsgId>25</MsgId>",
        LocationMessage(**COMMON_VALUES, msg_id="25", x=31.230416, y=121.473701, scale=15, label="上海市黄浦区人民广场"),
    ),
    "link": (
        "<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[停水通知]]></Title>"
        "<Description><![CDATA[明日停水]]></Description><Url><![CDATA[https://example.com/n]]></Url><MsgId>26</MsgId>",
        LinkMessage(**COMMON_VALUES, msg_id="26", title="停水通知", description="明日停水", url="https://example.com/n"),
    ),
    "subscribe": (
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>",
        SubscribeEvent(**COMMON_VALUES, msg_id=None, scene=None),
    ),
    "subscribe by QR scene": (
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>"
        "<EventKey><![CDATA[qrscene_building-7]]></EventKey><Ticket><![CDATA[t]]></Ticket>",
        SubscribeEvent(**COMMON_VALUES, msg_id=None, scene="building-7"),
    ),
    "unsubscribe": (
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event>",
        UnsubscribeEvent(**COMMON_VALUES, msg_id=None),
    ),
    "click": (
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[REPAIR]]></EventKey>",
        ClickEvent(**COMMON_VALUES, msg_id=None, key="REPAIR"),
    ),
    "view": (
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[VIEW]]></Event>"
        "<EventKey><![CDATA[https://example.com/m]]></EventKey>",
        ViewEvent(**COMMON_VALUES, msg_id=None, url="https://example.com/m"),
    ),
}


@pytest.mark.parametrize("name", MESSAGES)
def test_each_message_type_parses_to_its_class(name: str) -> None:
    body, expected = MESSAGES[name]
    message = _parse(body)
    assert type(message) is type(expected)
    assert message == expected


def test_an_unhandled_message_type_becomes_unknown_with_its_fields() -> None:
    message = _parse("<MsgType><![CDATA[video]]></MsgType><MediaId><![CDATA[m]]></MediaId><MsgId>27</MsgId>")
    assert isinstance(message, UnknownMessage)
    assert (message.msg_type, message.event, message.msg_id) == ("video", None, "27")
    assert message.fields["MediaId"] == "m"


def test_an_unhandled_event_becomes_unknown_and_dedupes_like_an_event() -> None:
    message = _parse("<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[LOCATION]]></Event><Latitude>1</Latitude>")
    assert isinstance(message, UnknownMessage)
    assert (message.msg_type, message.event) == ("event", "LOCATION")
    assert message.dedupe_key == f"{OPENID}:1700000000"


def test_messages_dedupe_by_msg_id_and_events_by_sender_and_time() -> None:
    text = _parse(MESSAGES["text"][0])
    assert text.dedupe_key == "1234567890123456"
    assert _parse(MESSAGES["click"][0]).dedupe_key == f"{OPENID}:1700000000"
    assert _parse(MESSAGES["subscribe"][0]).dedupe_key == f"{OPENID}:1700000000"


def test_a_retried_push_has_the_same_dedupe_key_and_another_message_does_not() -> None:
    first = _parse(MESSAGES["text"][0])
    retry = _parse(MESSAGES["text"][0])
    other = _parse(MESSAGES["text"][0].replace("1234567890123456", "1234567890123457"))
    assert first.dedupe_key == retry.dedupe_key != other.dedupe_key


def test_a_message_without_msg_id_falls_back_to_sender_and_time() -> None:
    message = _parse("<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content>")
    assert message.msg_id is None
    assert message.dedupe_key == f"{OPENID}:1700000000"


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"FromUserName": OPENID, "CreateTime": "1", "MsgType": "text", "Content": "x"}, "ToUserName"),
        ({"ToUserName": ACCOUNT, "CreateTime": "1", "MsgType": "text", "Content": "x"}, "FromUserName"),
        ({"ToUserName": ACCOUNT, "FromUserName": OPENID, "MsgType": "text", "Content": "x"}, "CreateTime"),
        ({"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1", "Content": "x"}, "MsgType"),
        ({"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1", "MsgType": "text"}, "Content"),
        ({"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1", "MsgType": "event"}, "Event"),
        ({"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1", "MsgType": "event", "Event": "CLICK"},
         "EventKey"),
        ({"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1", "MsgType": "image", "PicUrl": "u"},
         "MediaId"),
        ({"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1", "MsgType": "voice", "MediaId": "m"},
         "Format"),
        ({"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1", "MsgType": "location",
          "Location_X": "1", "Scale": "1"}, "Location_Y"),
        ({"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1", "MsgType": "link", "Title": "t",
          "Url": "u"}, "Description"),
    ],
)
def test_missing_required_fields_are_malformed(fields: Dict[str, str], missing: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        parse_message(fields)
    assert caught.value.field == missing


@pytest.mark.parametrize(
    ("name", "value"),
    [("CreateTime", "soon"), ("CreateTime", "-5"), ("CreateTime", "１２３"), ("FromUserName", ""),
     ("FromUserName", "rest:resident-1"), ("FromUserName", "o" * 129)],
)
def test_bad_common_values_are_malformed(name: str, value: str) -> None:
    fields = {"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1", "MsgType": "text", "Content": "x",
              name: value}
    with pytest.raises(MalformedMessage):
        parse_message(fields)


@pytest.mark.parametrize("value", ["north", "nan", "inf"])
def test_a_location_that_is_not_a_finite_number_is_malformed(value: str) -> None:
    fields = {"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1", "MsgType": "location",
              "Location_X": value, "Location_Y": "1", "Scale": "1", "Label": ""}
    with pytest.raises(MalformedMessage) as caught:
        parse_message(fields)
    assert caught.value.field == "Location_X"


# --- hostile and broken XML -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["hostname", "marker file"])
def test_an_external_entity_pointing_at_a_local_file_is_refused_and_never_read(target: str, tmp_path: Path) -> None:
    if target == "hostname":
        path = Path("/etc/hostname")
        secret = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    else:  # a marker long enough that finding it anywhere can only mean the file was read
        path = tmp_path / "secret.txt"
        secret = "XXE-MARKER-7f3c9a1e5b"
        path.write_text(secret, encoding="utf-8")
    url = path.as_uri()
    payloads = [
        f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "{url}">]>'
        f"<xml>{COMMON}<MsgType>text</MsgType><Content>&xxe;</Content></xml>",
        f'<!DOCTYPE xml [<!ENTITY % p SYSTEM "{url}"> %p;]>'
        f"<xml>{COMMON}<MsgType>text</MsgType><Content>x</Content></xml>",
        f'<!DOCTYPE xml SYSTEM "{url}"><xml>{COMMON}<MsgType>text</MsgType><Content>x</Content></xml>',
    ]
    for payload in payloads:
        with pytest.raises(MalformedMessage) as caught:
            parse_xml(payload.encode("utf-8"))
        if secret:
            assert secret not in str(caught.value) and secret not in repr(caught.value.data)
            assert secret not in str(caught.value.__context__)


def test_a_billion_laughs_bomb_is_refused_quickly() -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    bomb = f'<?xml version="1.0"?><!DOCTYPE xml [{entities}]><xml><Content>&lol9;</Content></xml>'
    started = time.perf_counter()
    with pytest.raises(MalformedMessage):
        parse_xml(bomb.encode("utf-8"))
    assert time.perf_counter() - started < 0.5


def test_an_internal_entity_without_a_doctype_is_refused() -> None:
    with pytest.raises(MalformedMessage):
        parse_xml(b"<xml><Content>&undefined;</Content></xml>")


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><Content>\xff\xfe</Content></xml>",                 # not UTF-8
        "<xml><Content>报修</Content></xml>".encode("gbk"),        # GBK is not UTF-8 either
        b"<xml><Content>unclosed</xml>",
        b"<xml><Content>a</Content>",
        b"",
        b"plain text",
        b"<xml><a>1</a></xml><xml/>",
    ],
)
def test_invalid_utf8_and_malformed_xml_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_xml(body)


def test_a_root_other_than_xml_is_refused() -> None:
    with pytest.raises(MalformedMessage, match="root"):
        parse_xml(b"<message><Content>x</Content></message>")


def test_a_repeated_element_is_refused() -> None:
    with pytest.raises(MalformedMessage) as caught:
        parse_xml(f"<xml>{COMMON}<FromUserName>oSomeoneElse</FromUserName></xml>".encode("utf-8"))
    assert caught.value.field == "FromUserName"


def test_an_oversized_body_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedMessage, match="larger"):
        parse_xml(b"<xml><Content>" + b"x" * 300_000 + b"</Content></xml>")


def test_cdata_whitespace_and_utf8_bom_are_kept_as_sent() -> None:
    fields = parse_xml("\ufeff<xml>\n  <Content><![CDATA[  两个空格 ]]></Content>\n</xml>".encode("utf-8"))
    assert fields == {"Content": "  两个空格 "}


# --- rendering ------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["a]]>b", "]]>", "]]]]>>", "<![CDATA[x]]>", "&lt;<>&", "多行\n文本"])
def test_cdata_with_its_terminator_round_trips(content: str) -> None:
    rendered = to_xml({"Content": content, "CreateTime": 1})
    assert parse_xml(rendered.encode("utf-8")) == {"Content": content, "CreateTime": "1"}


def test_characters_xml_cannot_carry_are_dropped_rather_than_breaking_the_reply() -> None:
    rendered = to_xml({"Content": "a\x00b\x1fc\td"})
    assert parse_xml(rendered.encode("utf-8")) == {"Content": "abc\td"}


@pytest.mark.parametrize("tag", ["", "1a", "a b", "x><y", "Content/"])
def test_to_xml_refuses_element_names_that_are_not_plain(tag: str) -> None:
    with pytest.raises(ValueError):
        to_xml({tag: "x"})


def test_text_reply_renders_the_passive_reply_format() -> None:
    assert render_text_reply(OPENID, ACCOUNT, "已收到", 1700000001) == (
        f"<xml><ToUserName><![CDATA[{OPENID}]]></ToUserName><FromUserName><![CDATA[{ACCOUNT}]]></FromUserName>"
        "<CreateTime>1700000001</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[已收到]]></Content></xml>"
    )


def test_a_reply_to_a_message_swaps_sender_and_recipient() -> None:
    reply = parse_xml(_parse(MESSAGES["text"][0]).reply_text("好的", 1700000002).encode("utf-8"))
    assert (reply["ToUserName"], reply["FromUserName"], reply["Content"]) == (OPENID, ACCOUNT, "好的")


# --- signature and timestamp ----------------------------------------------------------------------


def test_url_signature_matches_the_documented_sha1_of_the_sorted_parts() -> None:
    import hashlib

    expected = hashlib.sha1("".join(sorted(["hgtoken", "1700000000", "55555"])).encode()).hexdigest()
    assert signature("hgtoken", "1700000000", "55555") == expected
    assert verify("hgtoken", expected, "1700000000", "55555")


@pytest.mark.parametrize(
    ("token", "given", "timestamp", "nonce"),
    [
        ("hgtoken", "0" * 40, "1700000000", "55555"),
        ("othertoken", None, "1700000000", "55555"),
        ("hgtoken", None, "1700000001", "55555"),
        ("hgtoken", None, "1700000000", "55556"),
        ("hgtoken", "", "1700000000", "55555"),
        ("hgtoken", "签名", "1700000000", "55555"),
        ("", None, "1700000000", "55555"),
    ],
)
def test_a_signature_over_anything_else_does_not_verify(
    token: str, given: Optional[str], timestamp: str, nonce: str
) -> None:
    good = signature("hgtoken", "1700000000", "55555")
    assert not verify(token, good if given is None else given, timestamp, nonce)


def test_a_signature_does_not_verify_in_upper_case_or_with_extra_parts_dropped() -> None:
    good = signature("hgtoken", "1700000000", "55555", "ENCRYPTED")
    assert verify("hgtoken", good, "1700000000", "55555", "ENCRYPTED")
    assert not verify("hgtoken", good, "1700000000", "55555")
    assert not verify("hgtoken", good.upper(), "1700000000", "55555", "ENCRYPTED")


@pytest.mark.parametrize("offset", [0, 299, -299, 300, -300])
def test_timestamps_within_the_window_are_fresh(offset: int) -> None:
    check_fresh(str(1_700_000_000 + offset), now=1_700_000_000.0)


@pytest.mark.parametrize(
    "timestamp", ["1699999699", "1700000301", "1600000000", "9999999999", "", "abc", "1.7e9", "-1700000000",
                  " 1700000000", "１７００００００００", "17000000000000000"],
)
def test_stale_future_and_non_numeric_timestamps_are_refused(timestamp: str) -> None:
    with pytest.raises(StaleTimestamp) as caught:
        check_fresh(timestamp, now=1_700_000_000.0)
    assert caught.value.window == 300
