"""Client for the WeCom group-robot webhook (企业微信群机器人)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, Mapping, Optional

import aiohttp

from bot.errors import DeliveryError

__all__ = [
    "ERRCODE_INVALID_KEY",
    "ERRCODE_OK",
    "ERRCODE_RATE_LIMITED",
    "WeComRobotClient",
    "mask_key",
]

ERRCODE_OK = 0
ERRCODE_RATE_LIMITED = 45009  # "api freq out of limit": more than 20 messages a minute
ERRCODE_INVALID_KEY = 93000  # "invalid webhook url": the key is wrong or the robot was removed

# 408 and 429 are the two 4xx answers that say "try again later" rather than "this is wrong".
_RETRYABLE_4XX = {408, 429}


def mask_key(webhook_key: str) -> str:
    """A webhook key shortened for logs: enough to tell robots apart, never enough to post."""
    if len(webhook_key) <= 8:
        return "****"
    return f"{webhook_key[:4]}****"


class WeComRobotClient:
    """Posts robot messages to `base_url?key=KEY` and turns every failure into a DeliveryError."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout: float = 5.0) -> None:
        self._session = session
        self._base_url = base_url
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, webhook_key: str, payload: Mapping[str, Any]) -> None:
        """Post one message; return on errcode 0, raise DeliveryError (with `retryable`) otherwise."""
        if not webhook_key:
            raise DeliveryError("no webhook key", retryable=False, errcode=ERRCODE_INVALID_KEY)
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        masked = mask_key(webhook_key)
        try:
            async with self._session.post(
                self._base_url,
                params={"key": webhook_key},
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=self._timeout,
            ) as response:
                status = response.status
                text = await response.text(encoding="utf-8", errors="replace")
        except asyncio.TimeoutError as exc:
            raise DeliveryError(f"robot {masked}: timed out", retryable=True) from exc
        except aiohttp.ClientError as exc:
            # The exception text may quote the URL, and the URL holds the key: name the type only.
            raise DeliveryError(f"robot {masked}: {type(exc).__name__}", retryable=True) from exc

        if status >= 500:
            raise DeliveryError(f"robot {masked}: HTTP {status}", retryable=True)
        if status >= 400:
            raise DeliveryError(f"robot {masked}: HTTP {status}", retryable=status in _RETRYABLE_4XX)
        answer = _parse_answer(text)
        if answer is None:
            raise DeliveryError(f"robot {masked}: unreadable answer (HTTP {status})", retryable=True)
        errcode = answer.get("errcode")
        if errcode == ERRCODE_OK:
            return
        errmsg = str(answer.get("errmsg", ""))[:200].replace(webhook_key, masked)
        code = errcode if isinstance(errcode, int) else None
        raise DeliveryError(
            f"robot {masked}: errcode {errcode}: {errmsg}",
            retryable=code != ERRCODE_INVALID_KEY,
            errcode=code,
        )


def _parse_answer(text: str) -> Optional[Dict[str, Any]]:
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    if not isinstance(answer, dict) or "errcode" not in answer:
        return None
    return answer
