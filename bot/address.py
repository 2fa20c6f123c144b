"""Chinese address parsing and normalisation against the community's estates."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

__all__ = [
    "AMBIGUOUS_COMMUNITY",
    "MISSING_BUILDING",
    "MISSING_ROOM",
    "MISSING_UNIT",
    "UNKNOWN_BUILDING",
    "UNKNOWN_COMMUNITY",
    "UNKNOWN_ROOM",
    "UNKNOWN_UNIT",
    "Address",
    "AddressCheck",
    "BuildingDirectory",
    "Estate",
    "normalize_text",
    "parse_address",
    "replace_chinese_numerals",
]

# Problems reported by BuildingDirectory.check, in the order they are asked about.
AMBIGUOUS_COMMUNITY = "ambiguous_community"
UNKNOWN_COMMUNITY = "unknown_community"
MISSING_BUILDING = "missing_building"
UNKNOWN_BUILDING = "unknown_building"
MISSING_UNIT = "missing_unit"
UNKNOWN_UNIT = "unknown_unit"
MISSING_ROOM = "missing_room"
UNKNOWN_ROOM = "unknown_room"


@dataclass(frozen=True)
class Address:
    """A (possibly partial) address: estate name, building, unit and room."""

    community: Optional[str] = None
    building: Optional[int] = None
    unit: Optional[int] = None
    room: Optional[int] = None

    def label(self) -> str:
        """Return the address as residents write it, e.g. 吉利花园3号楼2单元501室."""
        parts = [self.community or ""]
        if self.building is not None:
            parts.append(f"{self.building}号楼")
        if self.unit is not None:
            parts.append(f"{self.unit}单元")
        if self.room is not None:
            parts.append(f"{self.room}室")
        return "".join(parts)

    def is_empty(self) -> bool:
        """Return True when no part of the address is known."""
        return (
            self.community is None
            and self.building is None
            and self.unit is None
            and self.room is None
        )


@dataclass(frozen=True)
class Estate:
    """An estate (小区) and the shape of its buildings."""

    name: str
    aliases: tuple[str, ...]
    buildings: tuple[int, ...]
    units: int
    floors: int
    rooms_per_floor: int

    def has_building(self, building: int) -> bool:
        """Return True when the estate has this building number."""
        return building in self.buildings

    def has_unit(self, unit: int) -> bool:
        """Return True when the estate's buildings have this unit number."""
        return 1 <= unit <= self.units

    def has_room(self, room: int) -> bool:
        """Return True when room = floor*100 + n exists (floor 1..floors, n 1..rooms_per_floor)."""
        floor, number = divmod(room, 100)
        return 1 <= floor <= self.floors and 1 <= number <= self.rooms_per_floor

    def room_numbers(self) -> tuple[int, ...]:
        """Return every room number of one unit, lowest floor first."""
        return tuple(
            floor * 100 + n
            for floor in range(1, self.floors + 1)
            for n in range(1, self.rooms_per_floor + 1)
        )

    def fits(self, address: Address) -> bool:
        """Return True when every building/unit/room given in the address exists here."""
        if address.building is not None and not self.has_building(address.building):
            return False
        if address.unit is not None and not self.has_unit(address.unit):
            return False
        if address.room is not None and not self.has_room(address.room):
            return False
        return True

    def nearest(self, address: Address) -> Address:
        """Return the closest valid address in this estate, keeping only the parts given."""
        building = address.building
        if building is not None and not self.has_building(building) and self.buildings:
            wanted: int = building
            building = min(self.buildings, key=lambda b: (abs(b - wanted), b))
        unit = address.unit
        if unit is not None:
            unit = min(max(unit, 1), self.units)
        room = address.room
        if room is not None and not self.has_room(room):
            floor, number = divmod(room, 100)
            floor = min(max(floor, 1), self.floors)
            number = min(max(number, 1), self.rooms_per_floor)
            room = floor * 100 + number
        return Address(self.name, building, unit, room)


@dataclass(frozen=True)
class AddressCheck:
    """The outcome of checking an address against the estates."""

    ok: bool
    address: Address
    problem: Optional[str] = None
    suggestion: Optional[Address] = None
    candidates: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------
# Text normalisation
# --------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
# 两 is left alone on purpose: "两栋楼" means "two buildings", not building 2.
_CN_RUN = re.compile("[零〇一幺二三四五六七八九十百千]+")
_DASHES = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")


def _cn_run_to_digits(run: str) -> Optional[str]:
    """Convert one run of Chinese numerals to Arabic digits, or None when it is not a number."""
    if not any(ch in _CN_UNITS for ch in run):
        # Dictated digit by digit: 五零一 -> 501 (kept as text: runs can be long).
        return "".join(str(_CN_DIGITS[ch]) for ch in run)
    if "幺" in run:
        return None
    total = 0
    digit: Optional[int] = None
    last_unit: Optional[int] = None
    after_zero = False
    for ch in run:
        if ch in _CN_UNITS:
            unit = _CN_UNITS[ch]
            if last_unit is not None and unit >= last_unit:
                return None
            if digit is None:
                if unit != 10 or total:  # only 十 may stand alone (十二 = 12)
                    return None
                digit = 1
            total += digit * unit
            digit, last_unit, after_zero = None, unit, False
        else:
            value = _CN_DIGITS[ch]
            if digit is not None:
                return None  # two digits in a row inside a unit-form number
            if value == 0:
                after_zero = True
            else:
                digit = value
    if digit is not None:
        # 一百五 = 150, 三千二 = 3200, but 一百零五 = 105.
        scale = last_unit // 10 if (last_unit and not after_zero) else 1
        total += digit * scale
    return str(total)


def replace_chinese_numerals(text: str) -> str:
    """Replace runs of Chinese numerals with Arabic digits (三号楼 -> 3号楼, 五零一 -> 501)."""

    def convert(match: re.Match[str]) -> str:
        run = match.group(0)
        before = text[match.start() - 1] if match.start() else ""
        after = text[match.end()] if match.end() < len(text) else ""
        if before.isdigit() or after.isdigit():
            return run  # mixing scripts (一3号楼) is more likely noise than a number
        digits = _cn_run_to_digits(run)
        return run if digits is None else digits

    return _CN_RUN.sub(convert, text)


def normalize_text(text: str) -> str:
    """Fold full-width forms and dashes to ASCII and Chinese numerals to digits."""
    folded = unicodedata.normalize("NFKC", text)
    folded = _DASHES.sub("-", folded)
    return replace_chinese_numerals(folded)


# --------------------------------------------------------------------------
# Masking things that look like numbers but are not address parts
# --------------------------------------------------------------------------

_MASKS = [
    # Ticket numbers such as HG-20261128-0001.
    re.compile(r"[A-Za-z]{1,5}\s*-?\s*\d{6,8}(?:\s*-\s*\d{1,6})?"),
    # Mobile numbers, possibly with +86 and separators.
    re.compile(r"(?<!\d)(?:(?:\+|00)?86[\s-]*)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)"),
    # Landlines with an area code, e.g. (022)2345 6789, 022-2345-6789.
    re.compile(r"(?<!\d)\(?\s*0\d{2,3}\s*\)?[\s-]*\d{3,4}[\s-]?\d{4}(?!\d)"),
    # Local numbers split 4+4.
    re.compile(r"(?<!\d)\d{4}[\s-]\d{4}(?!\d)"),
    # Other long digit runs (ID cards, order numbers); early, so that the
    # patterns below only ever meet short runs.
    re.compile(r"\d{5,}(?:-\d+)*"),
    # Dates and times.
    # A year needs four digits with dashes (12-3-1503 is an address) or 年.
    re.compile(r"(?<!\d)\d{4}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{1,2}(?!\d)"),
    re.compile(r"\d{2,4}\s*年(?:\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号]?)?)?"),
    re.compile(r"\d{1,2}\s*月\s*\d{1,2}\s*[日号]?"),
    re.compile(r"\d{1,2}\s*:\s*\d{2}(?:\s*:\s*\d{2})?"),
    re.compile(r"(?<!\d)\d{1,2}\s*/\s*\d{1,2}(?!\d)"),
    re.compile(r"(?:周|星期|礼拜)\s*\d"),
    # Decimals and quantities: 3天, 200元, 5点半, 3号线 ...
    re.compile(r"\d{1,4}\.\d{1,4}"),
    re.compile(
        r"\d{1,4}\s*(?:个月|分钟|小时|公斤|号线|路车|天(?!天)|周|年(?!年)|岁|元|块|毛|次|个|位|人|斤|"
        r"度|米|平|件|台|只|份|分|秒|点|月|日|%|kg|cm)",
        re.IGNORECASE,
    ),
]

_MASK_CHAR = "\x00"


def _blank(text: str, start: int, end: int) -> str:
    """Replace text[start:end] by placeholders, keeping positions stable."""
    return text[:start] + _MASK_CHAR * (end - start) + text[end:]


def _mask_noise(text: str) -> str:
    """Blank out phone numbers, ticket numbers, dates, times and quantities."""
    for pattern in _MASKS:
        text = pattern.sub(lambda m: _MASK_CHAR * len(m.group(0)), text)
    return text


# --------------------------------------------------------------------------
# Address patterns (applied to normalised, masked text)
# --------------------------------------------------------------------------

_B = r"([1-9]\d{0,2})"
_U = r"([1-9]\d?)"
_R = r"([1-9]\d{2,3})"
_LEFT = r"(?<![\d.\-/:])"
_RIGHT = r"(?![\d.\-/:])"
_UNIT_WORD = r"(?:单元|门(?![口卫禁铃锁窗帘把框诊市店面]))"

_DASH3 = re.compile(_LEFT + _B + r"\s*-\s*" + _U + r"\s*-\s*" + _R + _RIGHT)
_BUILDING = re.compile(
    _LEFT
    + _B
    + r"\s*(?:号楼|号栋|号幢|号座|栋|幢|座(?!位)|#楼?"
    # 3号2单元 and 3楼2门: 号/楼 alone mean a building only when a unit follows.
    + r"|[号楼](?=\s*[1-9]\d?\s*" + _UNIT_WORD + r"))"
)
_UNIT = re.compile(_LEFT + _U + r"\s*" + _UNIT_WORD)
_UNIT_ROOM_DASH = re.compile(r"[\s,、:]*" + _U + r"\s*-\s*" + _R + _RIGHT)
_BARE_ROOM = re.compile(
    r"[\s,、:\-的]*" + _R + r"(?![\d.\-/:])(?!\s*(?:号楼|栋|幢|座|单元|门|楼|层))"
)
_ROOM = re.compile(
    _LEFT + _R + r"\s*(?:室|房间|号房|房|户|号(?![楼栋幢院线床]))"
)
_FLOOR_ROOM = re.compile(
    _LEFT + r"([1-9]\d?)\s*[楼层]\s*(?:的\s*)?([1-9]\d?)\s*(?:号|室|户)(?![楼栋幢院线床])"
)

# Generic names that end like an estate name but are not one (小区里3号楼).
_ESTATE_SUFFIXES = ("花园", "小区", "家园", "新村", "公寓", "大厦", "花苑", "嘉园", "里", "园", "苑")
_FILLERS = ("我家住在", "我家住", "我家在", "我住在", "家住在", "我们", "咱们", "地址是",
            "地址", "家住", "住在", "我住", "我在", "我是", "我家", "在", "是", "住", "咱")
_NOT_A_NAME_BEFORE_SUFFIX = set("楼家这那院区村城子")
_NAME_CHAR = re.compile(r"[\u4e00-\u9fff]")


def _find_known_community(text: str, estates: Sequence[Estate]) -> tuple[Optional[str], str]:
    """Find the first estate named by name or alias; blank it out of the text."""
    names: list[tuple[str, Estate]] = []
    for estate in estates:
        for name in (estate.name, *estate.aliases):
            if name:
                names.append((name, estate))
    best: Optional[tuple[int, int, Estate]] = None
    for name, estate in names:
        pos = text.find(name)
        if pos < 0:
            continue
        # Earliest mention wins; at the same place the longer name wins.
        key = (pos, -len(name))
        if best is None or key < (best[0], -best[1]):
            best = (pos, len(name), estate)
    if best is None:
        return None, text
    pos, length, estate = best
    return estate.name, _blank(text, pos, pos + length)


def _find_unknown_community(text: str, building_start: int) -> Optional[str]:
    """Return an unknown estate name written just before the building, if any."""
    end = building_start
    while end > 0 and text[end - 1].isspace():
        end -= 1
    start = end
    while start > 0 and end - start < 12 and _NAME_CHAR.match(text[start - 1]):
        start -= 1
    candidate = text[start:end]
    suffix = next((s for s in _ESTATE_SUFFIXES if candidate.endswith(s)), None)
    if suffix is None:
        return None
    stripped = True
    while stripped:
        stripped = False
        for filler in _FILLERS:
            if candidate.startswith(filler) and len(candidate) > len(filler):
                candidate = candidate[len(filler):]
                stripped = True
                break
    stem = candidate[: -len(suffix)]
    if not stem or stem[-1] in _NOT_A_NAME_BEFORE_SUFFIX or stem in _FILLERS:
        return None
    if any(stem.endswith(s) for s in ("小区", "社区")):
        return None
    return candidate


def parse_address(text: str, estates: Sequence[Estate]) -> Address:
    """Find the estate, building, unit and room mentioned in free text."""
    if not text or not text.strip():
        return Address()
    work = _mask_noise(normalize_text(text))
    community, work = _find_known_community(work, estates)
    building: Optional[int] = None
    unit: Optional[int] = None
    room: Optional[int] = None

    dash = _DASH3.search(work)
    if dash:
        building, unit, room = (int(g) for g in dash.groups())
        if community is None:
            community = _find_unknown_community(work, dash.start())
        return Address(community, building, unit, room)

    match = _BUILDING.search(work)
    if match:
        building = int(match.group(1))
        if community is None:
            community = _find_unknown_community(work, match.start())
        work = _blank(work, match.start(), match.end())
        tail = match.end()
        pair = _UNIT_ROOM_DASH.match(work, tail)
        if pair:
            unit, room = int(pair.group(1)), int(pair.group(2))
            work = _blank(work, pair.start(), pair.end())
        else:
            bare = _BARE_ROOM.match(work, tail)
            if bare:
                room = int(bare.group(1))
                work = _blank(work, bare.start(), bare.end())

    if unit is None:
        match = _UNIT.search(work)
        if match:
            unit = int(match.group(1))
            work = _blank(work, match.start(), match.end())
            if room is None:
                bare = _BARE_ROOM.match(work, match.end())
                if bare:
                    room = int(bare.group(1))
                    work = _blank(work, bare.start(), bare.end())

    if room is None:
        match = _ROOM.search(work)
        if match:
            room = int(match.group(1))
        else:
            match = _FLOOR_ROOM.search(work)
            if match:
                room = int(match.group(1)) * 100 + int(match.group(2))

    return Address(community, building, unit, room)


# --------------------------------------------------------------------------
# Checking addresses against the estates
# --------------------------------------------------------------------------

_DEPTH = {UNKNOWN_BUILDING: 0, UNKNOWN_UNIT: 1, UNKNOWN_ROOM: 2}


def _core(name: str) -> str:
    """Strip generic estate suffixes so 吉利家园 compares to 吉利花园 by 吉利."""
    for suffix in _ESTATE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


class BuildingDirectory:
    """Knows the estates' buildings and checks resident addresses against them."""

    def __init__(self, estates: Sequence[Estate]) -> None:
        self._estates: tuple[Estate, ...] = tuple(estates)
        self._by_name: dict[str, Estate] = {}
        for estate in self._estates:
            for name in (estate.name, *estate.aliases):
                self._by_name.setdefault(self._key(name), estate)

    @staticmethod
    def _key(name: str) -> str:
        return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name))

    @property
    def estates(self) -> tuple[Estate, ...]:
        """Return the estates this directory knows."""
        return self._estates

    def estate_for(self, name_or_alias: Optional[str]) -> Optional[Estate]:
        """Return the estate with this name or alias, or None."""
        if not name_or_alias:
            return None
        return self._by_name.get(self._key(name_or_alias))

    def check(
        self,
        addr: Address,
        *,
        require_unit: bool,
        require_room: bool,
        default_estate: Optional[str] = None,
    ) -> AddressCheck:
        """Check an address, filling in the estate when it is unambiguous."""
        if addr.community is not None:
            estate = self.estate_for(addr.community)
            if estate is None:
                return self._unknown_community(addr)
            return self._assess(estate, addr, require_unit, require_room)

        default = self.estate_for(default_estate)
        if addr.building is None:
            only = default or (self._estates[0] if len(self._estates) == 1 else None)
            filled = replace(addr, community=only.name) if only else addr
            return AddressCheck(False, filled, MISSING_BUILDING)

        fitting = [e for e in self._estates if e.fits(addr)]
        if default is not None and default in fitting:
            return self._assess(default, addr, require_unit, require_room)
        if len(fitting) == 1:
            return self._assess(fitting[0], addr, require_unit, require_room)
        if len(fitting) > 1:
            return AddressCheck(
                False, addr, AMBIGUOUS_COMMUNITY,
                candidates=tuple(e.name for e in fitting),
            )
        if default is not None:
            return self._assess(default, addr, require_unit, require_room)
        if not self._estates:
            return AddressCheck(False, addr, UNKNOWN_COMMUNITY)
        if len(self._estates) == 1:
            return self._assess(self._estates[0], addr, require_unit, require_room)
        return self._closest_of_all(addr, require_unit, require_room)

    def _assess(
        self, estate: Estate, addr: Address, require_unit: bool, require_room: bool
    ) -> AddressCheck:
        """Check an address within one estate."""
        address = replace(addr, community=estate.name)
        problem: Optional[str] = None
        if address.building is None:
            problem = MISSING_BUILDING
        elif not estate.has_building(address.building):
            problem = UNKNOWN_BUILDING
        elif address.unit is not None and not estate.has_unit(address.unit):
            problem = UNKNOWN_UNIT
        elif address.unit is None and require_unit:
            problem = MISSING_UNIT
        elif address.room is not None and not estate.has_room(address.room):
            problem = UNKNOWN_ROOM
        elif address.room is None and require_room:
            problem = MISSING_ROOM
        if problem is None:
            return AddressCheck(True, address)
        suggestion = None
        if problem in _DEPTH:
            suggestion = self._suggest(estate, address)
        return AddressCheck(False, address, problem, suggestion)

    def _suggest(self, estate: Estate, address: Address) -> Address:
        """Suggest the same address in the one other estate where it exists, else the nearest here."""
        others = [e for e in self._estates if e is not estate and e.fits(address)]
        if len(others) == 1:
            return replace(address, community=others[0].name)
        return estate.nearest(address)

    def _unknown_community(self, addr: Address) -> AddressCheck:
        """Report an estate name nobody knows, suggesting the likeliest estate."""
        fitting = [e for e in self._estates if e.fits(addr)] if addr.building else []
        core = set(_core(self._key(addr.community or "")))
        scored = sorted(
            (
                (max(len(core & set(_core(n))) for n in (e.name, *e.aliases)), i)
                for i, e in enumerate(self._estates)
            ),
            reverse=True,
        )
        guess: Optional[Estate] = None
        if scored and scored[0][0] > 0 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
            guess = self._estates[scored[0][1]]
        elif len(fitting) == 1:
            guess = fitting[0]
        suggestion = guess.nearest(addr) if guess else None
        names = fitting or list(self._estates)
        return AddressCheck(
            False, addr, UNKNOWN_COMMUNITY, suggestion, tuple(e.name for e in names)
        )

    def _closest_of_all(
        self, addr: Address, require_unit: bool, require_room: bool
    ) -> AddressCheck:
        """With no estate named and none fitting, blame the estate that fits furthest."""
        results = [self._assess(e, addr, require_unit, require_room) for e in self._estates]
        depths = [_DEPTH.get(r.problem or "", 3) for r in results]
        best = max(depths)
        leaders = [i for i, d in enumerate(depths) if d == best]
        if len(leaders) == 1:
            return results[leaders[0]]
        return AddressCheck(
            False,
            addr,
            results[leaders[0]].problem,
            candidates=tuple(self._estates[i].name for i in leaders),
        )

