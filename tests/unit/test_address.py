"""Address parsing, normalisation and checking against the demo estates."""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Optional

import pytest

from bot.address import (
    AMBIGUOUS_COMMUNITY,
    MISSING_BUILDING,
    MISSING_ROOM,
    MISSING_UNIT,
    UNKNOWN_BUILDING,
    UNKNOWN_COMMUNITY,
    UNKNOWN_ROOM,
    UNKNOWN_UNIT,
    Address,
    AddressCheck,
    BuildingDirectory,
    Estate,
    normalize_text,
    parse_address,
    replace_chinese_numerals,
)

JILI = Estate("吉利花园", ("吉利", "吉利小区", "吉利花园小区"), tuple(range(1, 13)), 3, 6, 2)
HESHUN = Estate("和顺里", ("和顺里小区", "和顺"), tuple(range(1, 9)), 3, 5, 2)
JINSUI = Estate("金穗园", ("金穗", "金穗园小区"), tuple(range(1, 7)), 2, 18, 4)
ESTATES = (JILI, HESHUN, JINSUI)
DIRECTORY = BuildingDirectory(ESTATES)

_CN = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """Write 1..9999 the way it is read aloud: 十二, 二十一, 五百零一, 一千五百零三."""
    text, pending_zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit:
            text += ("零" if pending_zero else "") + _CN[digit] + unit
            pending_zero = False
        elif text:
            pending_zero = True
    return text[1:] if text.startswith("一十") else text


def cn_digits(n: int) -> str:
    """Write a number digit by digit, as dictated: 五零一."""
    return "".join(_CN[int(d)] for d in str(n))


def parse(text: str) -> Address:
    return parse_address(text, ESTATES)


def check(addr: Address, **kwargs: object) -> AddressCheck:
    options: dict = {"require_unit": True, "require_room": True}
    options.update(kwargs)
    return DIRECTORY.check(addr, **options)


def a(
    community: Optional[str] = None,
    building: Optional[int] = None,
    unit: Optional[int] = None,
    room: Optional[int] = None,
) -> Address:
    return Address(community, building, unit, room)


# --------------------------------------------------------------------------
# Chinese numerals
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("三号楼", "3号楼"),
        ("二单元", "2单元"),
        ("五零一", "501"),
        ("五〇一", "501"),
        ("幺零二", "102"),
        ("十", "10"),
        ("十二", "12"),
        ("二十", "20"),
        ("二十一", "21"),
        ("一百零一", "101"),
        ("五百零一", "501"),
        ("一百一十", "110"),
        ("一百五", "150"),
        ("一千五百零三", "1503"),
        ("一五零三", "1503"),
        ("一千零一", "1001"),
        ("三千二", "3200"),
        ("三号楼二单元五零一室", "3号楼2单元501室"),
        ("十二月五日", "12月5日"),
    ],
)
def test_chinese_numerals_become_digits(text: str, expected: str) -> None:
    assert replace_chinese_numerals(text) == expected


@pytest.mark.parametrize(
    "text",
    ["两栋楼", "千万别", "百姓", "十十", "一3号楼", "3号楼二1", "hello", ""],
)
def test_text_that_is_not_a_chinese_number_is_left_alone(text: str) -> None:
    assert replace_chinese_numerals(text) == text


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, "一"), (10, "十"), (12, "十二"), (21, "二十一"), (501, "五百零一"), (110, "一百一十"),
     (1503, "一千五百零三"), (1001, "一千零一"), (1804, "一千八百零四")],
)
def test_the_test_helper_writes_numbers_the_way_they_are_read(n: int, expected: str) -> None:
    assert cn_number(n) == expected


def test_a_very_long_run_of_numerals_is_converted_without_error() -> None:
    assert normalize_text("一" * 5000) == "1" * 5000


def test_full_width_digits_and_dashes_are_folded_to_ascii() -> None:
    assert normalize_text("３号楼２－５０１") == "3号楼2-501"


# --------------------------------------------------------------------------
# Parsing the forms residents write
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # digits with 号楼 / 单元 / 室
        ("3号楼2单元501", a(None, 3, 2, 501)),
        ("3号楼2单元501室", a(None, 3, 2, 501)),
        ("3号楼2单元501号", a(None, 3, 2, 501)),
        ("3号楼2单元501房间", a(None, 3, 2, 501)),
        ("3号楼2单元501户", a(None, 3, 2, 501)),
        ("3 号楼 2 单元 501", a(None, 3, 2, 501)),
        ("3号楼，2单元，501", a(None, 3, 2, 501)),
        ("3号楼2单元的501", a(None, 3, 2, 501)),
        # Chinese numerals, spoken digit by digit or with units
        ("三号楼二单元五零一", a(None, 3, 2, 501)),
        ("三号楼二单元501室", a(None, 3, 2, 501)),
        ("三号楼二单元五百零一室", a(None, 3, 2, 501)),
        ("十二号楼三单元六零二", a(None, 12, 3, 602)),
        ("十二号楼", a(None, 12)),
        ("二十一号楼", a(None, 21)),
        ("一号楼一单元一零一", a(None, 1, 1, 101)),
        # 栋 / 幢 / 座 for building, 门 for unit
        ("3栋2门501", a(None, 3, 2, 501)),
        ("3幢2单元501", a(None, 3, 2, 501)),
        ("3座2单元501号", a(None, 3, 2, 501)),
        ("3号栋2门501室", a(None, 3, 2, 501)),
        ("第3栋第2单元501", a(None, 3, 2, 501)),
        ("3号2单元501", a(None, 3, 2, 501)),
        ("3楼2门501", a(None, 3, 2, 501)),
        ("3#楼2单元501", a(None, 3, 2, 501)),
        # dash forms
        ("3-2-501", a(None, 3, 2, 501)),
        ("3 - 2 - 501", a(None, 3, 2, 501)),
        ("12-3-602", a(None, 12, 3, 602)),
        ("3—2—501", a(None, 3, 2, 501)),
        ("3号楼2-501", a(None, 3, 2, 501)),
        ("3栋2-501", a(None, 3, 2, 501)),
        ("3#2-501", a(None, 3, 2, 501)),
        # full-width digits
        ("３号楼", a(None, 3)),
        ("３号楼２单元５０１", a(None, 3, 2, 501)),
        ("３－２－５０１", a(None, 3, 2, 501)),
        # partial addresses
        ("3号楼", a(None, 3)),
        ("3号楼501", a(None, 3, None, 501)),
        ("2单元501", a(None, None, 2, 501)),
        ("501室", a(None, None, None, 501)),
        ("501号", a(None, None, None, 501)),
        ("501房间", a(None, None, None, 501)),
        ("1503室", a(None, None, None, 1503)),
        ("5楼1号", a(None, None, None, 501)),
        ("五楼一号", a(None, None, None, 501)),
        ("3号楼2单元5楼1号", a(None, 3, 2, 501)),
        # estates, by name and alias
        ("吉利花园1号楼", a("吉利花园", 1)),
        ("吉利3号楼", a("吉利花园", 3)),
        ("吉利小区3号楼2单元501", a("吉利花园", 3, 2, 501)),
        ("吉利花园小区3栋2门501", a("吉利花园", 3, 2, 501)),
        ("金穗园2号楼1单元1503", a("金穗园", 2, 1, 1503)),
        ("金穗6-2-1804", a("金穗园", 6, 2, 1804)),
        ("和顺里8号楼3单元502", a("和顺里", 8, 3, 502)),
        ("和顺5号楼", a("和顺里", 5)),
        ("和顺里小区二号楼", a("和顺里", 2)),
        ("吉利花园", a("吉利花园")),
        # noise around
        ("我住吉利花园 3号楼 2单元 501，电话13812345678", a("吉利花园", 3, 2, 501)),
        ("您好我是吉利花园3号楼2单元501的住户卫生间漏水了", a("吉利花园", 3, 2, 501)),
        ("3号楼2单元501天天漏水", a(None, 3, 2, 501)),
        ("3号楼2单元501一直漏水", a(None, 3, 2, 501)),
        ("麻烦来看看，吉利花园十号楼一单元六零二，厨房下水道堵了！", a("吉利花园", 10, 1, 602)),
        ("楼道灯坏了 金穗园 5号楼 2单元", a("金穗园", 5, 2)),
    ],
)
def test_written_forms_parse_to_building_unit_and_room(text: str, expected: Address) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3号楼2单元501，电话13812345678", a(None, 3, 2, 501)),
        ("3号楼2单元501 13812345678", a(None, 3, 2, 501)),
        ("3号楼2单元501电话13812345678", a(None, 3, 2, 501)),
        ("3号楼2单元 138 1234 5678", a(None, 3, 2)),
        ("3号楼2单元 138-1234-5678", a(None, 3, 2)),
        ("3号楼2单元 +86 13812345678", a(None, 3, 2)),
        ("3号楼 13812345678", a(None, 3)),
        ("3号楼2单元 022-23456789", a(None, 3, 2)),
        ("3号楼2单元 (022)2345 6789", a(None, 3, 2)),
        ("3号楼2单元 23456789", a(None, 3, 2)),
        ("3号楼2单元 2345 6789", a(None, 3, 2)),
        ("电话13812345678", a()),
        ("13812345678", a()),
        ("我的手机号是一三八一二三四五六七八", a()),
        ("022-23456789", a()),
    ],
)
def test_phone_numbers_are_not_taken_as_rooms(text: str, expected: Address) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HG-20261128-0001", a()),
        ("工单HG-20261128-0001进度怎么样", a()),
        ("3号楼2单元 HG-20261128-0001", a(None, 3, 2)),
        ("2026-11-28", a()),
        ("2026年11月28日", a()),
        ("3号楼2单元 2026-11-28 来修", a(None, 3, 2)),
        ("12月5号", a()),
        ("12月5日上午", a()),
        ("明天5号来修", a()),
        ("下午3:30", a()),
        ("3号楼2单元 10:30", a(None, 3, 2)),
        ("3号楼2单元 1000元", a(None, 3, 2)),
        ("3号楼2单元 2026年", a(None, 3, 2)),
        ("坐3号线到站", a()),
        ("一楼大厅", a()),
        ("我家3楼漏水", a()),
        ("两栋楼都停电了", a()),
        ("身份证120101199001011234", a()),
        ("3.5公里", a()),
    ],
)
def test_tickets_dates_times_and_quantities_are_not_address_parts(
    text: str, expected: Address
) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "community"),
    [
        ("阳光花园3号楼2单元501", "阳光花园"),
        ("我住在阳光小区3号楼", "阳光小区"),
        ("我家在幸福里5栋", "幸福里"),
        ("  阳光花园 3-2-501", "阳光花园"),
    ],
)
def test_an_unknown_estate_name_before_a_building_is_kept_as_written(
    text: str, community: str
) -> None:
    assert parse(text).community == community


@pytest.mark.parametrize(
    "text",
    ["小区里3号楼", "我们小区3号楼", "我家楼里3号楼", "院里3号楼", "这里3号楼", "社区里3号楼"],
)
def test_generic_words_before_a_building_are_not_an_estate(text: str) -> None:
    assert parse(text) == a(None, 3)


def test_the_first_estate_mentioned_wins() -> None:
    assert parse("和顺里3号楼，不是吉利花园").community == "和顺里"


def test_the_longest_name_at_the_same_place_wins() -> None:
    assert parse("吉利花园小区3号楼").community == "吉利花园"
    assert parse("和顺里小区3号楼").community == "和顺里"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\t",
        "😀😀😀",
        "👍",
        "hello, my sink is leaking",
        "Building 3, unit 2, room 501",
        "'; DROP TABLE tickets; --",
        "SELECT * FROM residents WHERE 1=1",
        "<script>alert(1)</script>",
        "啊" * 5000,
        "1" * 5000,
        "一" * 5000,
        "1-" * 2500,
        "1." * 2500,
        "号楼" * 2500,
        "单元" * 2500,
        "\x00\x01\x02",
        "﷽",
    ],
)
def test_junk_input_parses_to_an_empty_address(text: str) -> None:
    assert parse(text).is_empty()


def test_a_long_message_still_yields_its_address() -> None:
    text = "啊" * 2500 + "吉利花园3号楼2单元501" + "啊" * 2500
    assert parse(text) == a("吉利花园", 3, 2, 501)


def test_parsing_with_no_estates_still_finds_numbers() -> None:
    assert parse_address("吉利花园3号楼2单元501", ()) == a("吉利花园", 3, 2, 501)


# --------------------------------------------------------------------------
# Address and Estate
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "label"),
    [
        (a("吉利花园", 3, 2, 501), "吉利花园3号楼2单元501室"),
        (a(None, 3, 2, 501), "3号楼2单元501室"),
        (a("吉利花园", 3), "吉利花园3号楼"),
        (a("吉利花园", None, None, 501), "吉利花园501室"),
        (a(None, None, 2), "2单元"),
        (a(), ""),
    ],
)
def test_label_omits_missing_parts(address: Address, label: str) -> None:
    assert address.label() == label


def test_an_address_is_empty_only_when_every_part_is_missing() -> None:
    assert Address().is_empty()
    assert not a(room=501).is_empty()
    assert not a("吉利花园").is_empty()


def test_addresses_estates_and_checks_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        a("吉利花园").building = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        JILI.units = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        check(a("吉利花园", 3, 2, 501)).ok = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("estate", "room", "exists"),
    [
        (JILI, 101, True), (JILI, 102, True), (JILI, 602, True), (JILI, 103, False),
        (JILI, 701, False), (JILI, 100, False), (JILI, 1, False), (JILI, 0, False),
        (JILI, -101, False), (HESHUN, 502, True), (HESHUN, 601, False),
        (JINSUI, 1804, True), (JINSUI, 1503, True), (JINSUI, 1805, False), (JINSUI, 1901, False),
    ],
)
def test_a_room_exists_when_its_floor_and_number_fit_the_building(
    estate: Estate, room: int, exists: bool
) -> None:
    assert estate.has_room(room) is exists


def test_room_numbers_run_floor_by_floor() -> None:
    assert JILI.room_numbers()[:4] == (101, 102, 201, 202)
    assert len(JILI.room_numbers()) == 12
    assert len(JINSUI.room_numbers()) == 72


# --------------------------------------------------------------------------
# The directory
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("吉利花园", JILI), ("吉利", JILI), ("吉利小区", JILI), ("吉利花园小区", JILI),
        (" 吉利花园 ", JILI), ("和顺", HESHUN), ("和顺里小区", HESHUN), ("金穗", JINSUI),
        ("阳光花园", None), ("", None), (None, None),
    ],
)
def test_estates_are_found_by_name_or_alias(name: Optional[str], expected: Optional[Estate]) -> None:
    assert DIRECTORY.estate_for(name) == expected


def test_the_directory_lists_its_estates() -> None:
    assert DIRECTORY.estates == ESTATES


def test_a_valid_address_passes_with_the_canonical_estate_name() -> None:
    result = check(a("吉利", 3, 2, 501))
    assert result == AddressCheck(True, a("吉利花园", 3, 2, 501))


def test_the_only_estate_that_has_the_room_is_filled_in() -> None:
    result = check(a(None, 3, 1, 1503))
    assert result.ok
    assert result.address == a("金穗园", 3, 1, 1503)


def test_the_only_estate_that_has_the_building_is_filled_in() -> None:
    result = check(a(None, 10, 1, 601))
    assert result.ok
    assert result.address.community == "吉利花园"


def test_an_address_that_fits_several_estates_is_ambiguous() -> None:
    result = check(a(None, 3, 2, 501))
    assert not result.ok
    assert result.problem == AMBIGUOUS_COMMUNITY
    assert result.candidates == ("吉利花园", "和顺里", "金穗园")


def test_ambiguity_lists_only_the_estates_that_fit() -> None:
    result = check(a(None, 7, 3, 501))
    assert result.problem == AMBIGUOUS_COMMUNITY
    assert result.candidates == ("吉利花园", "和顺里")


def test_the_default_estate_settles_an_ambiguous_address() -> None:
    result = check(a(None, 3, 2, 501), default_estate="和顺")
    assert result.ok
    assert result.address == a("和顺里", 3, 2, 501)


def test_an_address_that_only_fits_another_estate_beats_the_default() -> None:
    result = check(a(None, 3, 1, 1503), default_estate="吉利花园")
    assert result.ok
    assert result.address.community == "金穗园"


def test_the_default_estate_is_used_to_suggest_when_nothing_fits() -> None:
    result = check(a(None, 3, 2, 705), default_estate="吉利花园")
    assert result.problem == UNKNOWN_ROOM
    assert result.address == a("吉利花园", 3, 2, 705)
    assert result.suggestion == a("吉利花园", 3, 2, 602)


@pytest.mark.parametrize(
    ("address", "require_unit", "require_room", "problem"),
    [
        (a(), True, True, MISSING_BUILDING),
        (a("吉利花园"), True, True, MISSING_BUILDING),
        (a("吉利花园", None, 2, 501), False, False, MISSING_BUILDING),
        (a("吉利花园", 3), True, True, MISSING_UNIT),
        (a("吉利花园", 3, None, 501), True, True, MISSING_UNIT),
        (a("吉利花园", 3, 2), True, True, MISSING_ROOM),
        (a("吉利花园", 3, 2), False, True, MISSING_ROOM),
        (a("吉利花园", 3), False, True, MISSING_ROOM),
        (a("吉利花园", 3), False, False, None),
        (a("吉利花园", 3, 2), True, False, None),
        (a("吉利花园", 3, None, 501), False, True, None),
    ],
)
def test_missing_parts_are_reported_only_when_required(
    address: Address, require_unit: bool, require_room: bool, problem: Optional[str]
) -> None:
    result = DIRECTORY.check(address, require_unit=require_unit, require_room=require_room)
    assert result.problem == problem
    assert result.ok is (problem is None)
    assert result.suggestion is None


def test_a_missing_building_keeps_the_default_estate() -> None:
    result = check(a(None, None, 2, 501), default_estate="金穗")
    assert result.problem == MISSING_BUILDING
    assert result.address == a("金穗园", None, 2, 501)


@pytest.mark.parametrize(
    ("address", "problem", "suggestion"),
    [
        # building beyond the estate -> nearest building
        (a("吉利花园", 13, 2, 501), UNKNOWN_BUILDING, a("吉利花园", 12, 2, 501)),
        (a("吉利花园", 20), UNKNOWN_BUILDING, a("吉利花园", 12)),
        (a("金穗园", 0, 1, 101), UNKNOWN_BUILDING, a("金穗园", 1, 1, 101)),
        # building that only another estate has -> that estate
        (a("和顺里", 10, 1, 101), UNKNOWN_BUILDING, a("吉利花园", 10, 1, 101)),
        # unit beyond the building -> last unit
        (a("吉利花园", 3, 4, 501), UNKNOWN_UNIT, a("吉利花园", 3, 3, 501)),
        (a("金穗园", 3, 3, 1503), UNKNOWN_UNIT, a("金穗园", 3, 2, 1503)),
        (a("吉利花园", 3, 0, 501), UNKNOWN_UNIT, a("吉利花园", 3, 1, 501)),
        # room beyond the top floor or the floor's rooms -> nearest room
        (a("吉利花园", 3, 2, 705), UNKNOWN_ROOM, a("吉利花园", 3, 2, 602)),
        (a("和顺里", 3, 3, 503), UNKNOWN_ROOM, a("和顺里", 3, 3, 502)),
        (a("和顺里", 3, 2, 601), UNKNOWN_ROOM, a("和顺里", 3, 2, 501)),
        (a("金穗园", 3, 2, 1905), UNKNOWN_ROOM, a("金穗园", 3, 2, 1804)),
        (a("金穗园", 3, 2, 500), UNKNOWN_ROOM, a("金穗园", 3, 2, 501)),
        # room that only another estate has -> that estate
        (a("吉利花园", 3, 2, 1503), UNKNOWN_ROOM, a("金穗园", 3, 2, 1503)),
        (a("和顺里", 3, 1, 103), UNKNOWN_ROOM, a("金穗园", 3, 1, 103)),
        (a("吉利花园", 3, 2, 503), UNKNOWN_ROOM, a("金穗园", 3, 2, 503)),
        # without a unit the room is still checked
        (a("吉利花园", 3, None, 705), UNKNOWN_ROOM, a("吉利花园", 3, None, 602)),
    ],
)
def test_an_address_that_does_not_exist_comes_with_a_valid_suggestion(
    address: Address, problem: str, suggestion: Address
) -> None:
    result = DIRECTORY.check(address, require_unit=False, require_room=False)
    assert not result.ok
    assert result.problem == problem
    assert result.suggestion == suggestion
    assert DIRECTORY.check(suggestion, require_unit=False, require_room=False).ok


def test_a_suggestion_fixes_every_wrong_part_at_once() -> None:
    result = check(a("吉利花园", 15, 5, 905))
    assert result.problem == UNKNOWN_BUILDING
    assert result.suggestion == a("吉利花园", 12, 3, 602)


def test_the_first_wrong_part_is_the_one_reported() -> None:
    assert check(a("吉利花园", 3, 4, 705)).problem == UNKNOWN_UNIT
    assert check(a("吉利花园", 13, 2)).problem == UNKNOWN_BUILDING


def test_an_unknown_estate_is_reported_with_the_estates_that_fit() -> None:
    result = check(a("阳光花园", 3, 1, 1503))
    assert result.problem == UNKNOWN_COMMUNITY
    assert result.address == a("阳光花园", 3, 1, 1503)
    assert result.candidates == ("金穗园",)
    assert result.suggestion == a("金穗园", 3, 1, 1503)


def test_an_unknown_estate_with_a_similar_name_suggests_that_estate() -> None:
    result = check(a("吉利家园", 3, 2, 501))
    assert result.problem == UNKNOWN_COMMUNITY
    assert result.suggestion == a("吉利花园", 3, 2, 501)


def test_an_unknown_estate_that_resembles_nothing_has_no_suggestion() -> None:
    result = check(a("阳光小区", 3, 2, 501))
    assert result.problem == UNKNOWN_COMMUNITY
    assert result.suggestion is None
    assert result.candidates == ("吉利花园", "和顺里", "金穗园")


def test_a_building_no_estate_has_is_unknown_and_lists_the_estates() -> None:
    result = check(a(None, 13))
    assert result.problem == UNKNOWN_BUILDING
    assert set(result.candidates) == {"吉利花园", "和顺里", "金穗园"}


def test_without_an_estate_the_one_that_fits_furthest_is_blamed() -> None:
    # Only 金穗园 has 18 floors, but unit 3 exists in 吉利花园 and 和顺里 only.
    result = check(a(None, 5, 3, 1503))
    assert result.problem == UNKNOWN_ROOM
    assert result.candidates == ("吉利花园", "和顺里")
    # Building 10 exists only in 吉利花园, which has 6 floors.
    result = check(a(None, 10, 3, 1501))
    assert result.problem == UNKNOWN_ROOM
    assert result.address == a("吉利花园", 10, 3, 1501)
    assert result.suggestion == a("吉利花园", 10, 3, 601)


def test_a_directory_with_one_estate_always_uses_it() -> None:
    single = BuildingDirectory((JILI,))
    assert single.check(a(None, 3, 2, 501), require_unit=True, require_room=True).address == a(
        "吉利花园", 3, 2, 501
    )
    result = single.check(a(None, 13), require_unit=False, require_room=False)
    assert result.problem == UNKNOWN_BUILDING
    assert result.suggestion == a("吉利花园", 12)
    assert single.check(a(), require_unit=False, require_room=False).address == a("吉利花园")


def test_an_empty_directory_knows_no_estate() -> None:
    empty = BuildingDirectory(())
    assert empty.check(a(None, 3), require_unit=False, require_room=False).problem == UNKNOWN_COMMUNITY
    assert empty.check(a("吉利花园", 3), require_unit=False, require_room=False).problem == UNKNOWN_COMMUNITY


def test_parse_then_check_turns_free_text_into_a_full_address() -> None:
    result = check(parse("我住吉利 三号楼二单元五零一，电话13812345678"))
    assert result.ok
    assert result.address.label() == "吉利花园3号楼2单元501室"


# --------------------------------------------------------------------------
# Property: every real address, in every style, parses back and passes
# --------------------------------------------------------------------------

Style = Callable[[Estate, int, int, int], str]

STYLES: dict[str, Style] = {
    "digits": lambda e, b, u, r: f"{e.name}{b}号楼{u}单元{r}室",
    "chinese numerals": lambda e, b, u, r: f"{e.name}{cn_number(b)}号楼{cn_number(u)}单元{cn_number(r)}室",
    "dictated digits": lambda e, b, u, r: f"{e.name}{cn_number(b)}号楼{cn_number(u)}单元{cn_digits(r)}",
    "栋 and 门": lambda e, b, u, r: f"{e.name}{b}栋{u}门{r}",
    "dash": lambda e, b, u, r: f"{e.name}{b}-{u}-{r}",
    "alias with noise": lambda e, b, u, r: f"您好，我住{e.aliases[-1]} {b}号楼 {u}单元 {r}，电话13812345678",
}


def every_address(estate: Estate) -> Iterator[tuple[int, int, int]]:
    for building in estate.buildings:
        for unit in range(1, estate.units + 1):
            for room in estate.room_numbers():
                yield building, unit, room


@pytest.mark.parametrize("style", list(STYLES), ids=list(STYLES))
@pytest.mark.parametrize("estate", ESTATES, ids=[e.name for e in ESTATES])
def test_every_valid_address_in_every_style_parses_back_to_itself_and_passes(
    estate: Estate, style: str
) -> None:
    write = STYLES[style]
    failures = []
    for building, unit, room in every_address(estate):
        text = write(estate, building, unit, room)
        expected = Address(estate.name, building, unit, room)
        parsed = parse(text)
        result = check(parsed)
        if parsed != expected or not result.ok or result.address != expected:
            failures.append((text, parsed, result.problem))
    assert failures == []


@pytest.mark.parametrize("estate", ESTATES, ids=[e.name for e in ESTATES])
def test_every_valid_address_without_an_estate_fits_the_estates_that_have_it(estate: Estate) -> None:
    for building, unit, room in every_address(estate):
        result = check(parse(f"{building}号楼{unit}单元{room}"))
        owners = tuple(e.name for e in ESTATES if e.fits(a(None, building, unit, room)))
        if len(owners) == 1:
            assert result.ok and result.address.community == owners[0]
        else:
            assert result.problem == AMBIGUOUS_COMMUNITY and result.candidates == owners
