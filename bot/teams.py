"""Volunteer teams named by number, colour, full name or short name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

from bot.address import normalize_text

__all__ = ["ASSISTANT_NAME", "Team", "match_team"]

# Residents greet the assistant by this name, which is also team 7's short
# name; without 队/服务/志愿 after it, it only counts when nothing else matches.
ASSISTANT_NAME = "红管家"

_COLOUR_SYNONYMS = {"橘": "橙", "桔": "橙", "紫罗兰": "紫"}
_TEAM_WORD = r"(?:志愿服务队|服务队|志愿队|志愿者队|队伍|队|服务|志愿)"
_FILLER = re.compile(
    r"[\s,.!?;:~、。…]|我|想|要|选|报名?|参加|加入|就|吧|啊|呀|呢|哦|嗯|好|的|那个|这个|了|第|个|号|支|队伍?"
)


@dataclass(frozen=True)
class Team:
    """A volunteer team: number, colour (e.g. 黄色), full name and short name."""

    number: int
    colour: str
    name: str
    short: str


def _colour_stem(colour: str) -> str:
    """Return the colour without 色 (黄色 -> 黄)."""
    return colour[:-1] if colour.endswith("色") and len(colour) > 1 else colour


def _by_number(text: str, teams: Sequence[Team]) -> set[int]:
    """Teams named by number: 2队, 第二个, 2号队, or a bare 2."""
    numbers = {int(n) for n in re.findall(r"第\s*(\d{1,2})(?!\d)", text)}
    numbers |= {
        int(n)
        for n in re.findall(r"(?<![\d月.])(\d{1,2})\s*(?:号|支)?\s*" + _TEAM_WORD, text)
    }
    numbers |= {int(n) for n in re.findall(r"(?<![\d月.])(\d{1,2})\s*号(?![楼栋院线床门室\d])", text)}
    bare = _FILLER.sub("", text)
    if bare.isdigit() and len(bare) <= 2:
        numbers.add(int(bare))
    known = {t.number for t in teams}
    return numbers & known


def _by_colour(text: str, teams: Sequence[Team]) -> set[int]:
    """Teams named by colour: 黄色, 黄的, 黄队, or just 黄."""
    for synonym, stem in _COLOUR_SYNONYMS.items():
        text = text.replace(synonym + "色", stem + "色").replace(synonym + "的", stem + "的")
    found: set[int] = set()
    for team in teams:
        stem = _colour_stem(team.colour)
        if not stem:
            continue
        if team.colour in text or re.search(re.escape(stem) + r"(?:的|色|\s*" + _TEAM_WORD + ")", text):
            found.add(team.number)
        elif _FILLER.sub("", text) in (stem, team.colour):
            found.add(team.number)
    return found


def _by_name(text: str, teams: Sequence[Team]) -> tuple[set[int], set[int]]:
    """Teams named by full or short name, split into (strong, weak) evidence."""
    strong: set[int] = set()
    weak: set[int] = set()
    for team in teams:
        if team.name and normalize_text(team.name) in text:
            strong.add(team.number)
            continue
        if not team.short:
            continue
        for match in re.finditer(re.escape(normalize_text(team.short)), text):
            followed = re.match(r"\s*" + _TEAM_WORD, text[match.end():]) is not None
            if team.short == ASSISTANT_NAME and not followed:
                weak.add(team.number)
            else:
                strong.add(team.number)
    return strong, weak


def match_team(text: str, teams: Sequence[Team]) -> Optional[Team]:
    """Return the one team the text names, or None when it names none or several."""
    if not text or not teams:
        return None
    folded = normalize_text(text)
    strong_names, weak_names = _by_name(folded, teams)
    evidence = strong_names | _by_colour(folded, teams) | _by_number(folded, teams)
    if not evidence:
        evidence = weak_names
    if len(evidence) != 1:
        return None
    (number,) = evidence
    return next(t for t in teams if t.number == number)
