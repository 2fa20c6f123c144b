"""The handoff command addresses a conversation in Rasa's HTTP API exactly as Rasa stores it."""

from __future__ import annotations

from typing import Optional

import pytest

from bot.rasa_api import conversation_path as rasa_conversation_path
from bot.identity import rest_sender


@pytest.mark.parametrize(("sender_id", "path"), [
    (rest_sender("resident-1"), "/conversations/rest:resident-1"),  # ':' is sent as it is: Rasa does not decode %3A
    ("oWX3s5V9mJ2kq7-abc_01", "/conversations/oWX3s5V9mJ2kq7-abc_01"),
    ("o_webchat_k3j9x2ab", "/conversations/o_webchat_k3j9x2ab"),
])
def test_sender_ids_are_sent_to_rasa_unescaped(sender_id: str, path: str) -> None:
    assert rasa_conversation_path(sender_id) == path


@pytest.mark.parametrize("sender_id", ["", "rest:张三", "rest:a b", "rest:a?b", "rest:a#b", "rest:100%", "/abs"])
def test_ids_no_unescaped_path_can_carry_are_refused(sender_id: str) -> None:
    path: Optional[str] = rasa_conversation_path(sender_id)
    assert path is None
