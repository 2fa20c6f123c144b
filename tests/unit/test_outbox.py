"""Queuing a notification: the WeCom markdown payload, mentions, the byte limit, no early commit."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import sessionmaker

from bot.notify.outbox import MARKDOWN_MAX_BYTES, enqueue, fit_utf8, markdown_payload
from bot.store.db import unit_of_work
from bot.store.models import ChatGroup, Notification, Ticket


def _group(session, key: str = "grid-1", webhook_key: str | None = "robot-key-1") -> ChatGroup:
    group = ChatGroup(key=key, name="一网格工作群", kind="grid", webhook_key=webhook_key)
    session.add(group)
    session.flush()
    return group


def test_enqueued_notification_is_a_pending_wecom_markdown_message(session_factory: sessionmaker) -> None:
    with unit_of_work(session_factory) as s:
        ticket = Ticket(number="HG-20261128-0001", kind="leak", sender_id="u1", description="漏水")
        s.add(ticket)
        s.flush()
        enqueue(s, group=_group(s), purpose="new_ticket", content="**新工单** 3栋2单元漏水", ticket_id=ticket.id)
    with unit_of_work(session_factory) as s:
        row = s.query(Notification).one()
        assert row.payload == {"msgtype": "markdown", "markdown": {"content": "**新工单** 3栋2单元漏水"}}
        assert (row.status, row.attempts, row.channel, row.purpose) == ("pending", 0, "wecom_robot", "new_ticket")
        assert row.webhook_key == "robot-key-1"
        assert row.ticket_id is not None and row.group_id is not None


def test_mentions_are_appended_inside_the_markdown_content() -> None:
    payload = markdown_payload("请尽快处理", mentions=["zhangwei", "lina", "zhangwei", ""])
    assert payload == {"msgtype": "markdown", "markdown": {"content": "请尽快处理\n<@zhangwei> <@lina>"}}


def test_long_content_is_cut_to_4096_bytes_without_splitting_a_character() -> None:
    content = "a" + "漏" * 2000  # 6001 bytes; a byte cut at 4093 would land inside a character
    cut = markdown_payload(content)["markdown"]["content"]
    encoded = cut.encode("utf-8")
    assert len(encoded) <= MARKDOWN_MAX_BYTES
    assert cut.endswith("…")
    assert cut[:-1] == content[: len(cut) - 1]
    assert len(encoded) > MARKDOWN_MAX_BYTES - 4  # nothing more than the split character is lost


def test_cut_content_keeps_its_mentions() -> None:
    cut = markdown_payload("水" * 3000, mentions=["gridleader"])["markdown"]["content"]
    assert len(cut.encode("utf-8")) <= MARKDOWN_MAX_BYTES
    assert cut.endswith("…\n<@gridleader>")


def test_content_within_the_limit_is_left_alone() -> None:
    exact = "水" * (MARKDOWN_MAX_BYTES // 3) + "a"  # 4096 bytes exactly
    assert fit_utf8(exact, MARKDOWN_MAX_BYTES) == exact


def test_enqueue_does_not_commit_so_it_rolls_back_with_the_callers_work(session_factory: sessionmaker) -> None:
    with pytest.raises(RuntimeError):
        with unit_of_work(session_factory) as s:
            enqueue(s, group=_group(s), purpose="new_ticket", content="会被回滚")
            s.flush()
            raise RuntimeError("the ticket could not be saved")
    with unit_of_work(session_factory) as s:
        assert s.query(Notification).count() == 0


def test_editing_the_group_later_does_not_redirect_a_queued_message(session_factory: sessionmaker) -> None:
    with unit_of_work(session_factory) as s:
        enqueue(s, group=_group(s), purpose="new_ticket", content="内容")
    with unit_of_work(session_factory) as s:
        s.query(ChatGroup).one().webhook_key = "replaced-key"
    with unit_of_work(session_factory) as s:
        assert s.query(Notification).one().webhook_key == "robot-key-1"


@pytest.mark.parametrize("webhook_key", [None, "", "   "])
def test_a_group_without_a_robot_key_queues_a_row_without_one(session_factory: sessionmaker, webhook_key) -> None:
    with unit_of_work(session_factory) as s:
        enqueue(s, group=_group(s, webhook_key=webhook_key), purpose="handoff", content="转人工")
        enqueue(s, group=None, purpose="handoff", content="没有群")
    with unit_of_work(session_factory) as s:
        assert [n.webhook_key for n in s.query(Notification)] == [None, None]
