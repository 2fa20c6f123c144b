"""Customer-service delivery of a reply in parts, with every refusal handed to a recorder (never only logged)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional, Protocol, Sequence

from bot.wechat.errors import WeChatAPIError, WeChatUnavailable

__all__ = ["Failure", "FailureRecorder", "TextSender", "deliver_parts"]

log = logging.getLogger(__name__)


class TextSender(Protocol):
    """What delivery needs of the API client (WeChatClient has it)."""

    async def send_text(self, openid: str, content: str) -> None:
        """Send one customer-service text message."""
        ...


@dataclass(frozen=True)
class Failure:
    """A reply (or its unsent rest) that did not reach the resident, and why."""

    sender_id: str
    errcode: Optional[int]  # None: the API was not reached, or not configured
    errmsg: str
    text: str


FailureRecorder = Callable[[Failure], Awaitable[None]]


async def deliver_parts(sender: Optional[TextSender], openid: str, parts: Sequence[str],
                        record: FailureRecorder) -> bool:
    """Send `parts` in order; at the first refusal record the unsent rest and stop. True when all went out."""
    if not parts:
        return True
    if sender is None:
        await record(Failure(openid, None, "customer-service API not configured (WECHAT_APPID/WECHAT_SECRET)",
                             "\n".join(parts)))
        return False
    for index, part in enumerate(parts):
        try:
            await sender.send_text(openid, part)
        except WeChatAPIError as exc:
            failure = Failure(openid, exc.errcode, exc.errmsg, "\n".join(parts[index:]))
        except WeChatUnavailable as exc:
            failure = Failure(openid, None, f"{exc.api}: {exc.reason}", "\n".join(parts[index:]))
        else:
            continue
        log.warning("customer-service reply to %s not delivered (errcode %s); recorded for staff",
                    openid, failure.errcode)
        await record(failure)
        return False
    return True
