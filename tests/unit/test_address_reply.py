"""Answers to the address question: pieces, bare numbers and corrections merged into what is known."""

from __future__ import annotations

from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import messages
from bot.address import Address, BuildingDirectory
from bot.address_reply import (AddressReply, address_from_slot, address_to_slot, merge, missing_parts,
                               offered_suggestion, read_reply, restates, without)
from bot.profile_answer import read_profile_answer
from tests.unit.test_address import ESTATES

DIRECTORY = BuildingDirectory(ESTATES)
ALL = ("community", "building", "unit", "room")


def _ask(address: Address, unit: bool = True, room: bool = True) -> str:
    check = DIRECTORY.check(address, require_unit=unit, require_room=room)
    return messages.address_question(check, ESTATES, require_unit=unit, require_room=room)


@pytest.mark.parametrize("text,missing,expected", [
    ("吉利花园", ALL, Address("吉利花园")),
    ("5号楼", ALL, Address(None, 5)),
    ("2单元301", ALL, Address(None, None, 2, 301)),
    ("2-301", ("unit", "room"), Address(None, None, 2, 301)),
    ("301", ("unit", "room"), Address(room=301)),
    ("301室。", ("room",), Address(room=301)),
    ("5", ("building", "unit", "room"), Address(building=5)),
    ("5号", ("building", "unit", "room"), Address(building=5)),
    ("2", ("unit", "room"), Address(unit=2)),
    ("五", ("building",), Address(building=5)),
    ("是二单元", ("unit", "room"), Address(unit=2)),
])
def test_a_piece_or_a_bare_number_fills_the_part_it_answers(text: str, missing, expected: Address) -> None:
    assert read_reply(text, ESTATES, missing).given == expected


@pytest.mark.parametrize("text", ["5", "301", "2-301"])
def test_a_bare_number_means_nothing_when_no_part_is_asked_for(text: str) -> None:
    assert read_reply(text, ESTATES).is_empty()


def test_a_bare_number_that_fits_no_missing_part_means_nothing() -> None:
    assert read_reply("5", ESTATES, ("room",)).is_empty()
    assert read_reply("301", ESTATES, ("building",)).is_empty()


@pytest.mark.parametrize("text", ["不对，是4号楼", "是4号楼不是3号楼", "不是3号楼，是4号楼", "不是3号楼是4号楼", "错了，4号楼",
                                  "说错了 应该是四号楼"])
def test_a_correction_gives_the_new_part_not_the_wrong_one(text: str) -> None:
    reply = read_reply(text, ESTATES)
    assert reply.correction and reply.given == Address(building=4) and not reply.retracted


def test_a_part_only_taken_back_is_retracted() -> None:
    reply = read_reply("不是3号楼", ESTATES)
    assert reply.given.is_empty() and reply.retracted == {"building"}
    assert merge(Address("吉利花园", 3, 2, 501), reply) == Address("吉利花园", None, 2, 501)


def test_a_wrong_estate_is_replaced_by_the_one_named() -> None:
    reply = read_reply("不是吉利花园，是和顺里", ESTATES)
    assert merge(Address("吉利花园", 5), reply) == Address("和顺里", 5)


def test_a_correction_with_a_bare_room_number_means_the_room() -> None:
    assert read_reply("错了，502", ESTATES).given == Address(room=502)
    assert read_reply("错了，5", ESTATES).given.is_empty()
    assert read_reply("是502不是501", ESTATES).given == Address(room=502)
    assert merge(Address("吉利花园", 3, 2, 501), read_reply("错了，是502不是501", ESTATES)) == Address("吉利花园", 3, 2, 502)


def test_no_correction_words_means_no_correction() -> None:
    assert not read_reply("吉利花园3号楼", ESTATES).correction


pieces = st.sampled_from(ESTATES).flatmap(lambda e: st.tuples(
    st.just(e), st.sampled_from(e.buildings), st.integers(1, e.units), st.sampled_from(e.room_numbers())))


@settings(max_examples=150, deadline=None)
@given(pieces, st.sampled_from([(0, 1, 2), (0, 2, 1), (1, 0, 2), (2, 1, 0), (1, 2, 0)]))
def test_pieces_in_any_order_accumulate_to_the_full_address(piece, order) -> None:
    estate, building, unit, room = piece
    texts = [estate.name, f"{building}号楼", f"{unit}单元{room}"]
    known = Address()
    for i in order:
        known = merge(known, read_reply(texts[i], ESTATES, missing_parts(known)))
    assert known == Address(estate.name, building, unit, room)
    assert DIRECTORY.check(known, require_unit=True, require_room=True).ok


@settings(max_examples=150, deadline=None)
@given(pieces, st.sampled_from(["building", "unit", "room"]), st.sampled_from(["不对，是{}", "不是{old}，是{}", "是{}不是{old}"]))
def test_a_correction_replaces_only_the_corrected_part(piece, part, template) -> None:
    estate, building, unit, room = piece
    known = Address(estate.name, building, unit, room)
    old = getattr(known, part)
    new = {"building": lambda: (building % len(estate.buildings)) + 1,
           "unit": lambda: (unit % estate.units) + 1, "room": lambda: room + 1 if room % 100 < 2 else room - 1}[part]()
    suffix = {"building": "号楼", "unit": "单元", "room": "室"}[part]
    text = template.format(f"{new}{suffix}", old=f"{old}{suffix}")
    corrected = merge(known, read_reply(text, ESTATES))
    expected = Address(**{**address_to_slot(known), part: new})
    assert corrected == expected, text


@pytest.mark.parametrize("known,question", [
    (Address(), messages.ASK_ADDRESS),
    (Address("吉利花园"), "吉利花园，几号楼几单元几号？"),
    (Address("吉利花园", 5), "吉利花园5号楼，几单元几号？"),
    (Address("吉利花园", 5, 2), "吉利花园5号楼2单元，门牌号是多少？"),
    (Address("吉利花园", 5, None, 301), "吉利花园5号楼301室，是几单元？"),
    (Address(None, 5), "5号楼在吉利花园、和顺里、金穗园都有，请问是哪个小区？"),
    (Address(None, 7, 3), "7号楼3单元在吉利花园、和顺里都有，请问是哪个小区？"),
    (Address(None, None, 2, 301), "2单元301室，是哪个小区几号楼？"),
])
def test_the_question_repeats_what_is_known_and_asks_only_for_the_rest(known: Address, question: str) -> None:
    assert _ask(known) == question


def test_a_repair_asks_only_for_estate_and_building() -> None:
    assert _ask(Address("金穗园"), unit=False, room=False) == "金穗园，几号楼？"
    assert _ask(Address(), unit=False, room=False) == messages.ASK_REPAIR_ADDRESS


@pytest.mark.parametrize("known,question", [
    (Address("吉利花园", 15), "吉利花园没有15号楼（有1-12号楼），请问是几号楼？"),
    (Address("和顺里", 10), "和顺里没有10号楼，您说的是“吉利花园10号楼”吗？"),
    (Address("吉利花园", 3, 5), "吉利花园3号楼没有5单元（有1-3单元），请问是几单元？"),
    (Address("吉利花园", 3, 2, 901), "吉利花园3号楼没有901室（6层，每层2户，例如301），请问门牌号是多少？"),
    (Address("幸福小区", 3), "没有找到“幸福小区”这个小区。本社区有：吉利花园、和顺里、金穗园，请问是哪个小区？"),
])
def test_a_wrong_part_is_named_in_a_single_question(known: Address, question: str) -> None:
    assert _ask(known) == question


def test_only_a_suggestion_from_another_estate_or_a_similar_name_is_offered() -> None:
    assert offered_suggestion(DIRECTORY.check(Address("和顺里", 10), require_unit=False, require_room=False)) == \
        Address("吉利花园", 10)
    assert offered_suggestion(DIRECTORY.check(Address("吉利花园", 15), require_unit=False, require_room=False)) is None
    assert offered_suggestion(DIRECTORY.check(Address(None, 5), require_unit=False, require_room=False)) is None


def test_restating_means_every_given_part_equals_the_stored_one() -> None:
    stored = Address("吉利花园", 3, 2, 501)
    assert restates(read_reply("3号楼2单元501", ESTATES), stored)
    assert not restates(read_reply("4号楼", ESTATES), stored)
    assert not restates(read_reply("不是3号楼", ESTATES), stored)
    assert not restates(AddressReply(Address()), stored)


@pytest.mark.parametrize("value,expected", [
    ({"community": "吉利花园", "building": 3, "unit": None, "room": 501}, Address("吉利花园", 3, None, 501)),
    ({"building": 3.0}, Address(None, 3)),
    ({"community": 5, "building": "3", "unit": True}, Address()),
    ("吉利花园3号楼", Address()),
    (None, Address()),
])
def test_the_slot_value_reads_back_and_anything_malformed_is_no_address(value, expected: Address) -> None:
    assert address_from_slot(value) == expected


def test_an_address_survives_the_slot() -> None:
    a = Address("金穗园", 2, 1, 1503)
    assert address_from_slot(address_to_slot(a)) == a
    assert without(a, ["unit", "room"]) == Address("金穗园", 2)


STORED = Address("吉利花园", 3, 2, 501)


def _answer(text: str, intent: str = "inform", name: Optional[str] = "王秀英"):
    return read_profile_answer(text, intent, ESTATES, stored_address=STORED, stored_phone="13812345678",
                               stored_name=name)


@pytest.mark.parametrize("text,intent", [("是的", "affirm"), ("对的", "inform"), ("嗯", "nlu_fallback"),
                                         ("13812345678", "inform"), ("吉利花园3号楼2单元501室", "inform"),
                                         ("王秀英", "inform"), ("我叫王秀英", "inform")])
def test_yes_or_restating_the_stored_details_counts_as_yes(text: str, intent: str) -> None:
    assert _answer(text, intent).use is True and _answer(text, intent).address is None


@pytest.mark.parametrize("text,intent", [("不是", "deny"), ("不用了", "deny"), ("重新填写", "inform"), ("不对", "inform")])
def test_no_means_no(text: str, intent: str) -> None:
    assert _answer(text, intent).use is False


def test_a_changed_part_keeps_the_rest_of_the_stored_details() -> None:
    answer = _answer("不对，是4号楼", "deny")
    assert answer.use is True and answer.address == Address("吉利花园", 4, 2, 501) and answer.phone is None
    assert _answer("换个电话13912345678").phone == "13912345678"


@pytest.mark.parametrize("text", ["那个啥", "我也不知道", "你好"])
def test_an_answer_that_fits_nothing_is_a_miss(text: str) -> None:
    assert _answer(text).use is None


@pytest.mark.parametrize("text", ["我也不知道", "不清楚", "我不太懂", "啥意思？"])
@pytest.mark.parametrize("intent", ["deny", "nlu_fallback", "inform"])
def test_not_knowing_is_a_miss_even_when_the_nlu_says_no(text: str, intent: str) -> None:
    assert _answer(text, intent).use is None


def test_another_name_is_not_a_restatement() -> None:
    assert _answer("李华").use is None
