"""Staff console accounts: passwords, lock-out, sessions and API bearer tokens (no web code here).

Passwords are argon2id hashes. Session ids and bearer tokens are random and only their sha256 is stored, so a
copy of the database signs nobody in. Times are naive UTC, like every column of bot/store/models.py.

The community file's demo password is hashed with one fixed salt (it is public anyway), which makes its hash
recognisable: `community load` can give it to accounts without a password, replace it when the demo password
changes and take it away when the file drops it — without ever touching a password someone set.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional, Tuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type, hash_secret
from sqlalchemy import func
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.errors import AccountLocked, AuthFailed, InvalidInput, NotFound
from bot.store.db import unit_of_work
from bot.store.models import Staff, StaffSession

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
# The same salt for every demo hash: it marks a hash as the demo password's (see the module docstring).
_DEMO_SALT = hashlib.sha256(b"hongguanjia console demo password").digest()[:16]
# Sessions are touched (sliding expiry) at most this often, so page views do not all write.
_TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class AccountPolicy:
    """How many wrong passwords lock an account, for how long, and when an idle session ends."""

    max_failed_logins: int = 5
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    session_idle: dt.timedelta = dt.timedelta(hours=12)

    @classmethod
    def from_settings(cls, settings: Settings) -> "AccountPolicy":
        """The policy the settings ask for (HG_CONSOLE_MAX_FAILED_LOGINS, …_LOCKOUT_MINUTES, …_SESSION_IDLE_HOURS)."""
        return cls(max_failed_logins=max(1, settings.console_max_failed_logins),
                   lockout=dt.timedelta(minutes=settings.console_lockout_minutes),
                   session_idle=dt.timedelta(hours=settings.console_session_idle_hours))


DEFAULT_POLICY = AccountPolicy()


@dataclass(frozen=True)
class StaffIdentity:
    """Who is signed in: enough to show their name and decide what they may see."""

    id: int
    key: str
    name: str
    role: str
    estates: Tuple[str, ...] = ()
    demo_password: bool = False  # still signing in with the community file's demo password


@dataclass(frozen=True)
class ConsoleSession:
    """A live session: its staff member and the CSRF token every form of theirs must carry."""

    staff: StaffIdentity
    csrf_token: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class NewSession:
    """What a successful login hands out: the raw session id (for the cookie only) and the CSRF token."""

    sid: str
    csrf_token: str
    staff: StaffIdentity
    expires_at: dt.datetime


def password_hasher() -> PasswordHasher:
    """The hasher for new passwords (argon2id, argon2-cffi's current defaults)."""
    return _hasher()


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of `password` with a random salt."""
    return password_hasher().hash(password)


@lru_cache(maxsize=8)
def demo_password_hash(password: str) -> str:
    """The demo password's hash: current parameters, the fixed demo salt (deterministic, so cached)."""
    ph = password_hasher()
    return hash_secret(password.encode("utf-8"), _DEMO_SALT, time_cost=ph.time_cost, memory_cost=ph.memory_cost,
                       parallelism=ph.parallelism, hash_len=ph.hash_len, type=Type.ID).decode("ascii")


def is_demo_hash(encoded: Optional[str]) -> bool:
    """True when `encoded` is a hash of a demo password (it carries the demo salt)."""
    if not encoded:
        return False
    parts = encoded.split("$")
    return len(parts) == 6 and parts[4] == base64.b64encode(_DEMO_SALT).decode("ascii").rstrip("=")


def _sha256(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Unknown accounts still cost one verification, so timing does not tell them from wrong passwords.
    return hash_password(secrets.token_urlsafe(16))


def _verify(encoded: Optional[str], password: str) -> bool:
    try:
        return password_hasher().verify(encoded or _dummy_hash(), password) and encoded is not None
    except (VerificationError, InvalidHashError):
        return False


def _identity(row: Staff) -> StaffIdentity:
    return StaffIdentity(id=row.id, key=row.key, name=row.name, role=row.role, estates=tuple(row.estates or ()),
                         demo_password=is_demo_hash(row.password_hash))


def _by_key(session: Session, key: str) -> Optional[Staff]:
    return session.query(Staff).filter(func.lower(Staff.key) == key.strip().lower()).one_or_none()


def login(factory: sessionmaker, key: str, password: str, now: dt.datetime,
          policy: AccountPolicy = DEFAULT_POLICY) -> NewSession:
    """Check `key`/`password` and open a new session; AuthFailed (same for every reason) or AccountLocked."""
    with unit_of_work(factory) as session:
        row = _by_key(session, key or "")
        # No account, a switched-off one and one without a password are all "wrong account or password".
        usable = row is not None and row.active and row.password_hash is not None
        staff_id = row.id if usable else None
        encoded = row.password_hash if usable else None
        locked_until = row.locked_until if usable else None
    if locked_until is not None and locked_until > now:
        raise AccountLocked("account locked", until=locked_until)
    candidate = password if password and len(password) <= MAX_PASSWORD_LENGTH else None
    ok = _verify(encoded, candidate or "-") and candidate is not None  # always one verification's cost
    if staff_id is None:
        raise AuthFailed("wrong account or password")
    if not ok:
        _count_failure(factory, staff_id, now, policy)
        raise AuthFailed("wrong account or password")
    return _open_session(factory, staff_id, password, now, policy)


def _count_failure(factory: sessionmaker, staff_id: int, now: dt.datetime, policy: AccountPolicy) -> None:
    with unit_of_work(factory) as session:
        # A lock that has run out starts a fresh count; the increment is one UPDATE, so racing tries all count.
        session.query(Staff).filter(Staff.id == staff_id, Staff.locked_until.isnot(None),
                                    Staff.locked_until <= now).update(
            {Staff.failed_logins: 0, Staff.locked_until: None}, synchronize_session=False)
        session.query(Staff).filter(Staff.id == staff_id).update(
            {Staff.failed_logins: Staff.failed_logins + 1}, synchronize_session=False)
        failures = session.query(Staff.failed_logins).filter(Staff.id == staff_id).scalar() or 0
        if failures < policy.max_failed_logins:
            return
        until = now + policy.lockout
        session.query(Staff).filter(Staff.id == staff_id).update({Staff.locked_until: until},
                                                                 synchronize_session=False)
    raise AccountLocked("account locked", until=until)


def _open_session(factory: sessionmaker, staff_id: int, password: str, now: dt.datetime,
                  policy: AccountPolicy) -> NewSession:
    with unit_of_work(factory) as session:
        row = session.get(Staff, staff_id)
        if row is None or not row.active:
            raise AuthFailed("wrong account or password")
        if row.locked_until is not None and row.locked_until > now:  # locked by a racing attempt meanwhile
            raise AccountLocked("account locked", until=row.locked_until)
        row.failed_logins = 0
        row.locked_until = None
        if row.password_hash and not is_demo_hash(row.password_hash) and \
                password_hasher().check_needs_rehash(row.password_hash):
            row.password_hash = hash_password(password)
        # Housekeeping: this account's ended sessions go.
        session.query(StaffSession).filter(
            StaffSession.staff_id == staff_id,
            (StaffSession.expires_at <= now) | StaffSession.revoked_at.isnot(None)).delete(synchronize_session=False)
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + policy.session_idle
        session.add(StaffSession(sid_hash=_sha256(sid), staff_id=staff_id, csrf_token=csrf, created_at=now,
                                 last_seen_at=now, expires_at=expires))
        return NewSession(sid=sid, csrf_token=csrf, staff=_identity(row), expires_at=expires)


def session_for(factory: sessionmaker, raw_sid: Optional[str], now: dt.datetime,
                policy: AccountPolicy = DEFAULT_POLICY) -> Optional[ConsoleSession]:
    """The live session `raw_sid` names (its idle expiry pushed on), or None when unknown, ended or revoked."""
    if not raw_sid:
        return None
    with unit_of_work(factory) as session:
        row = session.query(StaffSession).filter(StaffSession.sid_hash == _sha256(raw_sid)).one_or_none()
        if row is None or row.revoked_at is not None or row.expires_at <= now or not row.staff.active:
            return None
        if now - row.last_seen_at >= _TOUCH_EVERY:
            row.last_seen_at = now
            row.expires_at = now + policy.session_idle
        return ConsoleSession(staff=_identity(row.staff), csrf_token=row.csrf_token, expires_at=row.expires_at)


def logout(factory: sessionmaker, raw_sid: Optional[str], now: dt.datetime) -> bool:
    """Revoke the session `raw_sid` names; True when there was a live one."""
    if not raw_sid:
        return False
    with unit_of_work(factory) as session:
        count = session.query(StaffSession).filter(StaffSession.sid_hash == _sha256(raw_sid),
                                                   StaffSession.revoked_at.is_(None)).update(
            {StaffSession.revoked_at: now}, synchronize_session=False)
    return bool(count)


def check_new_password(password: str, demo_password: Optional[str] = None) -> None:
    """InvalidInput unless `password` is acceptable as a real password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"a password has at most {MAX_PASSWORD_LENGTH} characters", field="password")
    if password.strip() != password:
        raise InvalidInput("a password must not start or end with spaces", field="password")
    if demo_password and password == demo_password:
        raise InvalidInput("the demo password is public; choose another one", field="password")


def set_password(factory: sessionmaker, key: str, password: str, now: dt.datetime,
                 demo_password: Optional[str] = None) -> StaffIdentity:
    """Give `key` a real password, clear any lock-out and sign out their sessions."""
    check_new_password(password, demo_password)
    encoded = hash_password(password)
    with unit_of_work(factory) as session:
        row = _by_key(session, key)
        if row is None:
            raise NotFound(f"no staff member {key!r}", key=key)
        row.password_hash = encoded
        row.failed_logins = 0
        row.locked_until = None
        session.query(StaffSession).filter(StaffSession.staff_id == row.id, StaffSession.revoked_at.is_(None)).update(
            {StaffSession.revoked_at: now}, synchronize_session=False)
        return _identity(row)


def seed_demo_passwords(session: Session, demo_password: Optional[str], community: Optional[str] = None) -> int:
    """Give accounts (of `community`, or all) without a real password the demo password (or take it back when
    unset); returns how many."""
    encoded = demo_password_hash(demo_password) if demo_password else None
    seeded = 0
    query = session.query(Staff)
    if community is not None:
        query = query.filter(Staff.community_key == community)
    for row in query.all():
        if row.password_hash is None or is_demo_hash(row.password_hash):
            row.password_hash = encoded
            seeded += encoded is not None
    return seeded


def demo_accounts(factory: sessionmaker) -> List[StaffIdentity]:
    """Active accounts that still sign in with the demo password, in key order."""
    with unit_of_work(factory) as session:
        rows = session.query(Staff).filter(Staff.active.is_(True)).order_by(Staff.id).all()
        return [_identity(r) for r in rows if is_demo_hash(r.password_hash)]


def issue_api_token(factory: sessionmaker, key: str) -> str:
    """A new bearer token for `key` (replacing any earlier one); only its sha256 is kept, so show it once."""
    raw = "hg_" + secrets.token_urlsafe(32)
    with unit_of_work(factory) as session:
        row = _by_key(session, key)
        if row is None:
            raise NotFound(f"no staff member {key!r}", key=key)
        row.api_token_hash = _sha256(raw)
    return raw


def revoke_api_token(factory: sessionmaker, key: str) -> bool:
    """Withdraw `key`'s bearer token; True when they had one."""
    with unit_of_work(factory) as session:
        row = _by_key(session, key)
        if row is None:
            raise NotFound(f"no staff member {key!r}", key=key)
        had = row.api_token_hash is not None
        row.api_token_hash = None
    return had


def staff_for_token(factory: sessionmaker, raw: Optional[str]) -> Optional[StaffIdentity]:
    """The active staff member whose bearer token is `raw`, or None."""
    if not raw or len(raw) > 200:
        return None
    with unit_of_work(factory) as session:
        row = session.query(Staff).filter(Staff.api_token_hash == _sha256(raw)).one_or_none()
        return _identity(row) if row is not None and row.active else None
