"""Pure rules that decide a ticket's priority and whether neighbours must pause water use."""

from __future__ import annotations

import re

# A leak that involves a shared drain stack or the neighbours: water use upstairs makes it worse.
_SHARED_DRAIN = re.compile(
    r"下水|地漏|主管|立管|排水管|污水|返水|反水|倒灌|冒水|溢|堵|楼上|楼下|邻居|化粪池|马桶"
)
_URGENT_REPAIR = re.compile(r"困|被关|出不来|冒烟|着火|起火|火花|漏电|燃气|煤气|塌|掉下来|砸")


def needs_water_pause(kind: str, description: str) -> bool:
    """True when a leak involves a shared drain or neighbours, so the building is asked to pause water use."""
    return kind == "leak" and bool(_SHARED_DRAIN.search(description or ""))


def priority_for(kind: str, description: str) -> str:
    """`urgent` for every leak and for repairs that endanger people; `normal` otherwise."""
    if kind == "leak":
        return "urgent"
    if kind == "repair" and _URGENT_REPAIR.search(description or ""):
        return "urgent"
    return "normal"
