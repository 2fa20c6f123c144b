"""Sender ids: REST clients live in their own namespace and can never be taken for a WeChat resident."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import identity
from bot.channels.webchat import openid_for
from bot.identity import (
    MAX_REST_SENDER_CHARS,
    MAX_SENDER_ID_CHARS,
    UnknownSenderId,
    channel_of,
    display_sender,
    is_wechat,
    rest_client,
    rest_sender,
)

rest_inputs = st.text(min_size=1, max_size=MAX_REST_SENDER_CHARS)
openids = st.text(alphabet=st.characters(blacklist_characters=":", blacklist_categories=("Cs",)),
                  min_size=1, max_size=MAX_SENDER_ID_CHARS)


@given(rest_inputs)
def test_no_rest_sender_whatever_its_characters_is_ever_a_wechat_id(raw: str) -> None:
    sender_id = rest_sender(raw)
    assert channel_of(sender_id) == "rest"
    assert not is_wechat(sender_id)
    assert len(sender_id) <= MAX_SENDER_ID_CHARS  # fits every sender_id column


@given(rest_inputs, rest_inputs)
def test_two_different_rest_senders_never_share_a_sender_id(a: str, b: str) -> None:
    assert (rest_sender(a) == rest_sender(b)) == (a == b)


@given(rest_inputs)
def test_the_rest_client_is_recovered_from_its_sender_id(raw: str) -> None:
    assert rest_client(rest_sender(raw)) == raw


@given(rest_inputs, openids)
def test_a_rest_sender_never_equals_an_openid(raw: str, openid: str) -> None:
    assert rest_sender(raw) != openid


@pytest.mark.parametrize("openid", ["oWX3s5V9mJ2kq7-abcDEFghij_01", "o_webchat_k3j9x2ab", "oResident-channel-0001"])
def test_openids_and_web_chat_residents_are_wechat_ids_unchanged(openid: str) -> None:
    assert channel_of(openid) == "wechat" and is_wechat(openid)
    assert display_sender(openid) == openid


def test_web_chat_page_residents_are_wechat_identities() -> None:
    assert channel_of(openid_for("k3j9x2ab")) == "wechat"


def test_a_rest_client_named_like_an_openid_is_still_rest() -> None:
    sender_id = rest_sender("oWX3s5V9mJ2kq7-abcDEFghij_01")
    assert sender_id == "rest:oWX3s5V9mJ2kq7-abcDEFghij_01"
    assert channel_of(sender_id) == "rest"
    assert display_sender(sender_id) == "oWX3s5V9mJ2kq7-abcDEFghij_01 (REST)"


@pytest.mark.parametrize("raw", ["", "x" * (MAX_REST_SENDER_CHARS + 1)])
def test_rest_sender_refuses_an_empty_or_overlong_name(raw: str) -> None:
    with pytest.raises(UnknownSenderId):
        rest_sender(raw)


@pytest.mark.parametrize("sender_id", ["", "rest:", "sms:13800138000", "a:b", "o" * (MAX_SENDER_ID_CHARS + 1)])
def test_strings_no_channel_makes_have_no_channel_and_cannot_be_messaged(sender_id: str) -> None:
    with pytest.raises(UnknownSenderId):
        channel_of(sender_id)
    assert not is_wechat(sender_id)
    assert display_sender(sender_id) == repr(sender_id)


def test_rest_client_of_a_wechat_id_is_refused() -> None:
    with pytest.raises(UnknownSenderId):
        rest_client("oWX3s5V9mJ2kq7")


def test_openid_check_matches_channel_of() -> None:
    assert identity.is_wechat_openid("oWX3s5V9mJ2kq7")
    assert not identity.is_wechat_openid("rest:oWX3s5V9mJ2kq7")
    assert not identity.is_wechat_openid("")
