"""Naming a volunteer team by number, colour or name."""

from __future__ import annotations

from typing import Optional

import pytest

from bot.teams import Team, match_team

TEAMS = (
    Team(1, "橙色", "橙色文化健身志愿服务队", "文化健身"),
    Team(2, "黄色", "黄色邻里互助志愿服务队", "邻里互助"),
    Team(3, "绿色", "绿色文明风尚志愿服务队", "文明风尚"),
    Team(4, "青色", "青色守护青少年志愿服务队", "守护青少年"),
    Team(5, "蓝色", "蓝色医疗健康志愿服务队", "医疗健康"),
    Team(6, "紫色", "紫色巾帼志愿服务队", "巾帼"),
    Team(7, "红色", "红管家服务队", "红管家"),
)


def number_of(text: str) -> Optional[int]:
    team = match_team(text, TEAMS)
    return team.number if team else None


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("2队", 2),
        ("二队", 2),
        ("2号队", 2),
        ("二号队", 2),
        ("第二个", 2),
        ("第2个", 2),
        ("第二支队伍", 2),
        ("第二", 2),
        ("第七个", 7),
        ("2", 2),
        ("２", 2),
        (" 2 ", 2),
        ("二", 2),
        ("2。", 2),
        ("选2吧", 2),
        ("我要报2号", 2),
        ("我想参加5队", 5),
        ("1队", 1),
        ("7", 7),
    ],
)
def test_teams_are_found_by_number(text: str, number: int) -> None:
    assert number_of(text) == number


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("黄色", 2),
        ("黄的", 2),
        ("黄队", 2),
        ("黄色队", 2),
        ("黄", 2),
        ("橙色", 1),
        ("橘色", 1),
        ("绿的", 3),
        ("青色", 4),
        ("蓝队", 5),
        ("紫色的那个", 6),
        ("红色", 7),
        ("红的", 7),
        ("我要报黄色的", 2),
    ],
)
def test_teams_are_found_by_colour(text: str, number: int) -> None:
    assert number_of(text) == number


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("邻里互助", 2),
        ("巾帼", 6),
        ("红管家", 7),
        ("红管家服务队", 7),
        ("文化健身", 1),
        ("文明风尚", 3),
        ("守护青少年", 4),
        ("医疗健康", 5),
        ("黄色邻里互助志愿服务队", 2),
        ("紫色巾帼志愿服务队", 6),
        ("我想参加红管家服务队", 7),
    ],
)
def test_teams_are_found_by_name_or_short_name(text: str, number: int) -> None:
    assert number_of(text) == number


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("我想报黄色邻里互助那个", 2),
        ("我想报名参加邻里互助的志愿服务", 2),
        ("帮我报一下巾帼那个队吧", 6),
        ("我们3个人想报邻里互助", 2),
        ("第二个，黄色的", 2),
        ("2队黄色邻里互助", 2),
        ("红管家你好，我想报黄色", 2),
        ("红管家，我要报名第二个队", 2),
        ("你好红管家，我想参加医疗健康", 5),
        ("我想加入守护青少年的队伍", 4),
    ],
)
def test_teams_are_found_among_surrounding_words(text: str, number: int) -> None:
    assert number_of(text) == number


@pytest.mark.parametrize(
    "text",
    [
        "1队黄色",  # number and colour disagree
        "我不想报黄色，想报蓝色",
        "邻里互助和巾帼都行",
        "8队",  # no such team
        "第十个",
        "0",
        "12",
        "两个都想报",
        "随便",
        "志愿者",
        "我想当志愿者",
        "12月5号的活动",
        "3号楼",
        "",
        "   ",
        "😀",
        "the yellow team",
        "'; DROP TABLE teams; --",
        "啊" * 5000,
        "2" * 5000,
        "二" * 5000,
    ],
)
def test_ambiguous_or_unknown_team_names_match_nothing(text: str) -> None:
    assert number_of(text) is None


def test_no_teams_match_nothing() -> None:
    assert match_team("黄色", ()) is None


def test_the_matched_team_is_the_one_passed_in() -> None:
    assert match_team("巾帼", TEAMS) is TEAMS[5]
