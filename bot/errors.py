"""Small exception hierarchy; each error carries data and is translated at the edge."""

from __future__ import annotations

import datetime as dt
from typing import Optional


class HongguanjiaError(Exception):
    """Base class for errors the application expects and translates."""

    code = "error"

    def __init__(self, message: str = "", **data: object) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.data = data


class NotFound(HongguanjiaError):
    """A record the caller named does not exist (or is not theirs to see)."""

    code = "not_found"


class NotAllowed(HongguanjiaError):
    """The caller may not do this to this record."""

    code = "not_allowed"


class InvalidInput(HongguanjiaError):
    """Input that cannot be accepted as it is."""

    code = "invalid_input"

    def __init__(self, message: str = "", field: Optional[str] = None, **data: object) -> None:
        super().__init__(message, field=field, **data)
        self.field = field


class InvalidState(HongguanjiaError):
    """The record is in a state where this change makes no sense (e.g. already closed)."""

    code = "invalid_state"


class LimitReached(HongguanjiaError):
    """The caller already has as many of something as one may have at once (e.g. open tickets)."""

    code = "limit_reached"


class AssistantUnavailable(HongguanjiaError):
    """A part the assistant needs for this turn (the action server) could not be reached; the turn was dropped
    unsaved (bot/rasa_boot.py, correction 5), and the resident should be told to try again later."""

    code = "assistant_unavailable"


class AuthFailed(HongguanjiaError):
    """A sign-in was refused: unknown or inactive account, or a wrong password (deliberately not told apart)."""

    code = "auth_failed"


class AccountLocked(AuthFailed):
    """Too many wrong passwords in a row: the account refuses every sign-in until `until` (naive UTC)."""

    code = "account_locked"

    def __init__(self, message: str = "", until: Optional[dt.datetime] = None, **data: object) -> None:
        super().__init__(message, until=until, **data)
        self.until = until


class DeliveryError(HongguanjiaError):
    """An outside service refused or failed to take a message."""

    code = "delivery_error"

    def __init__(self, message: str = "", retryable: bool = True, errcode: Optional[int] = None) -> None:
        super().__init__(message, retryable=retryable, errcode=errcode)
        self.retryable = retryable
        self.errcode = errcode
