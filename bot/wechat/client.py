"""Client for the Official Account APIs the bot uses: customer-service text, template messages, the menu."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

import aiohttp

from bot.wechat.errors import WeChatAPIError, WeChatUnavailable
from bot.wechat.token import AccessTokenManager, TokenStore

__all__ = [
    "DEFAULT_API_BASE",
    "ERRCODE_ACCESS_TOKEN_EXPIRED",
    "ERRCODE_INVALID_ACCESS_TOKEN",
    "ERRCODE_INVALID_CREDENTIAL",
    "ERRCODE_OUT_OF_WINDOW",
    "ERRCODE_QUOTA_EXCEEDED",
    "TOKEN_PATH",
    "WeChatClient",
]

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.weixin.qq.com"
TOKEN_PATH = "/cgi-bin/token"
CUSTOM_SEND_PATH = "/cgi-bin/message/custom/send"
TEMPLATE_SEND_PATH = "/cgi-bin/message/template/send"
MENU_CREATE_PATH = "/cgi-bin/menu/create"

ERRCODE_INVALID_CREDENTIAL = 40001  # token invalid or no longer the latest
ERRCODE_INVALID_ACCESS_TOKEN = 40014  # token malformed; wechatpy refetches on it too
ERRCODE_ACCESS_TOKEN_EXPIRED = 42001
ERRCODE_QUOTA_EXCEEDED = 45009
ERRCODE_OUT_OF_WINDOW = 45015  # customer-service message outside the user's 48-hour window

# A new token cures these; anything else would fail the same way again.
_TOKEN_ERRCODES = frozenset({ERRCODE_INVALID_CREDENTIAL, ERRCODE_INVALID_ACCESS_TOKEN, ERRCODE_ACCESS_TOKEN_EXPIRED})

TemplateValue = Union[str, Mapping[str, str]]


class WeChatClient:
    """Calls the WeChat API with a shared access token; errcode != 0 raises WeChatAPIError for the caller to record."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        appid: str,
        secret: str,
        base_url: str,
        token_store: TokenStore,
        timeout: float = 5.0,
        *,
        refresh_margin: float = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._appid = appid
        self._secret = secret
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.tokens = AccessTokenManager(token_store, self._fetch_token, refresh_margin, clock)

    def __repr__(self) -> str:
        return f"WeChatClient(appid={self._appid!r}, base_url={self._base_url!r})"

    async def send_text(self, openid: str, content: str) -> None:
        """Send a customer-service text message (only within 48 hours of the user's last message: else 45015)."""
        await self.call(CUSTOM_SEND_PATH, {"touser": openid, "msgtype": "text", "text": {"content": content}})

    async def send_template(
        self, openid: str, template_id: str, data: Mapping[str, TemplateValue], url: Optional[str] = None
    ) -> Optional[int]:
        """Send a template message and return its msgid; plain string values become `{"value": …}`."""
        payload: Dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: dict(value) if isinstance(value, Mapping) else {"value": value}
                     for key, value in data.items()},
        }
        if url:
            payload["url"] = url
        answer = await self.call(TEMPLATE_SEND_PATH, payload)
        msgid = answer.get("msgid")
        return msgid if isinstance(msgid, int) else None

    async def create_menu(self, menu: Mapping[str, Any]) -> None:
        """Replace the account's custom menu with `menu` (`{"button": [...]}`)."""
        await self.call(MENU_CREATE_PATH, menu)

    async def call(self, path: str, payload: Mapping[str, Any]) -> Dict[str, Any]:
        """POST `payload` to `path` with the access token; on 40001/40014/42001 refetch the token and retry once."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        token = await self.tokens.get()
        answer = await self._post(path, token, body)
        if _errcode(answer) in _TOKEN_ERRCODES:
            log.info("WeChat %s answered %s; fetching a new access token and retrying once", path, _errcode(answer))
            await self.tokens.invalidate(token)
            token = await self.tokens.get()
            answer = await self._post(path, token, body)
        errcode = _errcode(answer)
        if errcode != 0:
            raise WeChatAPIError(errcode, self._scrub(str(answer.get("errmsg", "")), token), api=path)
        return answer

    async def _post(self, path: str, token: str, body: bytes) -> Dict[str, Any]:
        return await self._request("POST", path, {"access_token": token}, body, secrets=(token,))

    async def _fetch_token(self) -> Tuple[str, int]:
        params = {"grant_type": "client_credential", "appid": self._appid, "secret": self._secret}
        answer = await self._request("GET", TOKEN_PATH, params, None, secrets=())
        errcode = _errcode(answer)
        if errcode != 0:
            raise WeChatAPIError(errcode, self._scrub(str(answer.get("errmsg", ""))), api=TOKEN_PATH)
        token = answer.get("access_token")
        expires_in = answer.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int) or expires_in <= 0:
            raise WeChatUnavailable(TOKEN_PATH, "answer without access_token/expires_in")
        return token, expires_in

    async def _request(
        self, method: str, path: str, params: Mapping[str, str], body: Optional[bytes], secrets: Tuple[str, ...]
    ) -> Dict[str, Any]:
        headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else {}
        try:
            async with self._http.request(
                method, self._base_url + path, params=params, data=body, headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                text = await response.text(encoding="utf-8", errors="replace")
        except asyncio.TimeoutError:
            raise WeChatUnavailable(path, "timed out") from None
        except aiohttp.ClientError as exc:
            # The exception text can quote the URL, and the URL holds the secret or the token.
            raise WeChatUnavailable(path, type(exc).__name__) from None
        if status != 200:
            raise WeChatUnavailable(path, f"HTTP {status}")
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise WeChatUnavailable(path, f"unreadable answer: {self._scrub(text[:100], *secrets)!r}")
        return answer

    def _scrub(self, text: str, *secrets: str) -> str:
        for secret in (self._secret, *secrets):
            if secret:
                text = text.replace(secret, "****")
        return text[:300]


def _errcode(answer: Mapping[str, Any]) -> int:
    errcode = answer.get("errcode", 0)
    if isinstance(errcode, bool) or not isinstance(errcode, int):
        try:
            return int(errcode)
        except (TypeError, ValueError):
            return -1
    return errcode
