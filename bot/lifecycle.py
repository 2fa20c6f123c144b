"""The ticket lifecycle: states, the one transition table, and who may take each action (pure, no I/O).

    待受理 open ──accept/assign──▶ 已派单 assigned ──start──▶ 处理中 in_progress ──resolve──▶ 已办结 resolved
        ▲                              │  ▲ reassign            │ reassign/return             │ confirm / close (72 h)
        └────────── return ────────────┘  └─────────────────────┘                             ▼
        └──────────────────────────── reopen (resident, within 7 days of resolution) ◀── 已关闭 closed
    cancel (resident): open, assigned or in_progress ──▶ 已取消 cancelled
    retype (leads): open, assigned or in_progress, state unchanged: the ticket's kind corrected

`bot/services/lifecycle.py` applies these rules to the database; the console, the API, the CLI and the
actions all go through it, so this table is the only place a rule lives.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional, Tuple

from bot.errors import InvalidState

OPEN = "open"
ASSIGNED = "assigned"
IN_PROGRESS = "in_progress"
RESOLVED = "resolved"
CLOSED = "closed"
CANCELLED = "cancelled"

STATES: Tuple[str, ...] = (OPEN, ASSIGNED, IN_PROGRESS, RESOLVED, CLOSED, CANCELLED)
STATE_LABELS: Dict[str, str] = {OPEN: "待受理", ASSIGNED: "已派单", IN_PROGRESS: "处理中", RESOLVED: "已办结",
                                CLOSED: "已关闭", CANCELLED: "已取消"}
# Not yet resolved: someone still has to act (what a resident's "查进度" lists, what escalation watches).
ACTIVE: Tuple[str, ...] = (OPEN, ASSIGNED, IN_PROGRESS)
TERMINAL: Tuple[str, ...] = (CLOSED, CANCELLED)

# Who acts. Staff roles come from the community model; "resident" and "system" are the other two actors.
GRID_MEMBER, GRID_LEADER, PROPERTY_MANAGER = "grid_member", "grid_leader", "property_manager"
DUTY, SECRETARY, ADMIN, TEAM_LEAD = "duty", "secretary", "admin", "team_lead"
# The street office (街道) over several communities: an admin of every community of the deployment.
STREET = "street"
STAFF_ROLES: Tuple[str, ...] = (GRID_MEMBER, GRID_LEADER, PROPERTY_MANAGER, DUTY, SECRETARY, ADMIN, TEAM_LEAD, STREET)
ROLE_LABELS: Dict[str, str] = {GRID_MEMBER: "网格员", GRID_LEADER: "网格长", PROPERTY_MANAGER: "物业管家",
                               DUTY: "值班人员", SECRETARY: "社区书记", ADMIN: "管理员", TEAM_LEAD: "志愿队队长",
                               STREET: "街道管理员"}
RESIDENT, SYSTEM = "resident", "system"

# Roles that hand work to others (assign, reassign) and may act on a ticket someone else holds.
LEADS: FrozenSet[str] = frozenset({GRID_LEADER, PROPERTY_MANAGER, SECRETARY, ADMIN, STREET})
WORKERS: FrozenSet[str] = frozenset(STAFF_ROLES)

REOPEN_WINDOW = dt.timedelta(days=7)
AUTO_CLOSE_AFTER = dt.timedelta(hours=72)
MAX_NOTE = 1000
# Who may clear what a resident's profile remembers about them being alone, elderly, ill… (a visit found it
# no longer so); the ticket keeps what was said when it was opened.
PROFILE_EDITORS: FrozenSet[str] = LEADS
# A resident may correct a ticket's address ("不对，是4号楼") soon after opening it, before work has started.
CORRECTION_WINDOW = dt.timedelta(hours=2)
CORRECTABLE: Tuple[str, ...] = (OPEN, ASSIGNED)


def correctable(status: str, opened_at: dt.datetime, now: dt.datetime) -> bool:
    """Whether the resident may still change this ticket's address."""
    return status in CORRECTABLE and dt.timedelta(0) <= now - opened_at <= CORRECTION_WINDOW


@dataclass(frozen=True)
class Transition:
    """One action: the states it starts from, the state it leads to (None: stays), and who may take it."""

    action: str
    label: str
    sources: FrozenSet[str]
    target: Optional[str]
    by: FrozenSet[str]
    needs_note: bool = False  # a reason (return, reassign) or what was done (resolve)
    needs_assignee: bool = False  # names the staff member who takes the ticket
    holder_only: bool = False  # only the staff member holding the ticket, or a lead
    needs_kind: bool = False  # names the ticket's new kind (retype)


TRANSITIONS: Dict[str, Transition] = {t.action: t for t in (
    Transition("accept", "接单", frozenset({OPEN}), ASSIGNED, WORKERS),
    Transition("assign", "派单", frozenset({OPEN, ASSIGNED}), ASSIGNED, LEADS, needs_assignee=True),
    Transition("start", "开始处理", frozenset({ASSIGNED}), IN_PROGRESS, WORKERS, holder_only=True),
    Transition("note", "备注", frozenset({OPEN, ASSIGNED, IN_PROGRESS, RESOLVED}), None, WORKERS, needs_note=True),
    Transition("resolve", "办结", frozenset({ASSIGNED, IN_PROGRESS}), RESOLVED, WORKERS, needs_note=True,
               holder_only=True),
    Transition("return", "退回", frozenset({ASSIGNED, IN_PROGRESS}), OPEN, WORKERS, needs_note=True,
               holder_only=True),
    Transition("reassign", "转派", frozenset({ASSIGNED, IN_PROGRESS}), ASSIGNED, LEADS, needs_note=True,
               needs_assignee=True),
    # The assistant filed it under the wrong kind (a leak that is a repair…): a lead corrects it, the ticket keeps
    # its state; the admins' review counts these as misunderstandings (bot/services/transcripts.py).
    Transition("retype", "改类型", frozenset(ACTIVE), None, LEADS, needs_kind=True),
    Transition("cancel", "取消", frozenset(ACTIVE), CANCELLED, frozenset({RESIDENT})),
    Transition("confirm", "确认办结", frozenset({RESOLVED}), CLOSED, frozenset({RESIDENT})),
    Transition("reopen", "重新处理", frozenset({RESOLVED, CLOSED}), OPEN, frozenset({RESIDENT})),
    Transition("close", "自动关闭", frozenset({RESOLVED}), CLOSED, frozenset({SYSTEM})),
)}
STAFF_ACTIONS: Tuple[str, ...] = tuple(a for a, t in TRANSITIONS.items() if t.by & WORKERS)


class IllegalTransition(InvalidState):
    """The action cannot be taken from the ticket's current state (or not any more)."""

    code = "illegal_transition"


def transition(action: str) -> Transition:
    """The table entry for `action`; InvalidState for an action nobody knows."""
    found = TRANSITIONS.get(action)
    if found is None:
        raise InvalidState(f"unknown action {action!r}", action=action)
    return found


def target_of(action: str, status: str, *, resolved_at: Optional[dt.datetime] = None,
              now: Optional[dt.datetime] = None) -> str:
    """The state `action` leads to from `status`; IllegalTransition when it is not allowed from there."""
    t = transition(action)
    if status not in t.sources:
        raise IllegalTransition(f"cannot {action} a ticket that is {status}", action=action, status=status)
    if action == "reopen" and (resolved_at is None or now is None or now - resolved_at > REOPEN_WINDOW):
        raise IllegalTransition("a ticket can be reopened only within 7 days of its resolution", action=action,
                                status=status)
    if action == "close" and (resolved_at is None or now is None or now - resolved_at < AUTO_CLOSE_AFTER):
        raise IllegalTransition("a resolved ticket closes by itself only 72 hours after resolution",
                                action=action, status=status)
    return t.target or status


def allowed_actions(status: str, role: str, *, holds: bool) -> Tuple[str, ...]:
    """The staff actions a member of `role` may take on a ticket in `status` (`holds`: it is assigned to them)."""
    return tuple(a for a in STAFF_ACTIONS if may(a, role, holds=holds) and status in TRANSITIONS[a].sources)


def may(action: str, role: str, *, holds: bool) -> bool:
    """Whether an actor of `role` may take `action` at all (states aside); `holds`: the ticket is theirs."""
    t = transition(action)
    if role not in t.by:
        return False
    return not t.holder_only or holds or role in LEADS
