"""The running Rasa server's authenticated HTTP API: read a conversation, resume a paused one.

Used by the console (a ticket's conversation excerpt, the handoff inbox) and the CLI (`handoff release`).
Rasa's routes do not decode %-escapes (sanic `unquote=False`), so a sender id goes into the path as it
is; an id with characters a path cannot carry as they are cannot be addressed at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import aiohttp

from bot.config import Settings
from bot.errors import DeliveryError

__all__ = ["RESUME_EVENTS", "RasaAPI", "Turn", "conversation_path", "rasa_token"]

# RFC 3986 pchar and '/': what a URL path carries as it is.
_RAW_PATH_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/")


def conversation_path(sender_id: str) -> Optional[str]:
    """The path of a conversation in Rasa's HTTP API (`rest:x` stays `rest:x`), or None when none addresses it."""
    if not sender_id or not set(sender_id) <= _RAW_PATH_CHARS or sender_id.startswith("/"):
        return None
    return f"/conversations/{sender_id}"


def rasa_token(settings: Settings) -> str:
    """The Rasa server's auth token: HG_RASA_TOKEN, or the one `make run` wrote to var/rasa_token."""
    if settings.rasa_token:
        return settings.rasa_token
    path = settings.var_dir / "rasa_token"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


# What resuming appends to a paused conversation's tracker.
RESUME_EVENTS = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]


@dataclass(frozen=True)
class Turn:
    """One message of a conversation: who spoke (resident or assistant), when, and what."""

    speaker: str  # "resident" | "assistant"
    at: dt.datetime  # naive UTC
    text: str


class RasaAPI:
    """A thin async client over one HTTP session; every call has a timeout and raises DeliveryError on failure."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, token: str, timeout: float = 5.0) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def _url(self, sender_id: str, suffix: str) -> str:
        path = conversation_path(sender_id)
        if path is None:
            raise DeliveryError(f"Rasa's HTTP API cannot address the conversation {sender_id!r}", retryable=False)
        return f"{self._base}{path}{suffix}"

    async def _call(self, method: str, url: str, body: Optional[Any] = None) -> Any:
        try:
            async with self._http.request(method, url, params={"token": self._token}, json=body,
                                          timeout=self._timeout) as resp:
                if resp.status >= 400:
                    raise DeliveryError(f"Rasa answered HTTP {resp.status}", retryable=resp.status >= 500)
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise DeliveryError(f"Rasa server unreachable: {type(exc).__name__}") from None

    async def conversation(self, sender_id: str, limit: int = 30, until: Optional[dt.datetime] = None) -> List[Turn]:
        """The last `limit` resident and assistant messages (up to `until`, naive UTC, if given), oldest first."""
        tracker: Dict[str, Any] = await self._call("GET", self._url(sender_id, "/tracker"))
        turns: List[Turn] = []
        for event in tracker.get("events") or []:
            kind = event.get("event")
            if kind not in ("user", "bot") or not (event.get("text") or "").strip():
                continue
            at = dt.datetime.utcfromtimestamp(float(event.get("timestamp") or 0))
            if until is not None and at > until:
                break
            turns.append(Turn("resident" if kind == "user" else "assistant", at, str(event["text"])))
        return turns[-limit:]

    async def resume(self, sender_id: str) -> None:
        """Hand a paused conversation back to the assistant (resumed, and listening for the next message).

        The pause came right after the assistant's handoff message, so the tracker never recorded it listening;
        without the `action_listen` the policies see the next message out of turn and loop on the fallback.
        """
        await self._call("POST", self._url(sender_id, "/tracker/events"), RESUME_EVENTS)
