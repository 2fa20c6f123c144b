"""The channel's configuration and its per-process resources: HTTP session, API client, Redis and the stores.

`WeChatResources.open` is called once (in a server start-up listener, or lazily on the first push) and
`close` on shutdown. One API client means one `AccessTokenManager` for the process. The token, the dedupe
claims and the numbered options are shared by every process (a retry or a "1" may reach another Rasa
worker): in Redis when configured, else in the machine's state file (bot/local_state.py); in memory only
when neither is given (tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import aiohttp

from bot.config import Settings
from bot.local_state import LocalState
from bot.sender_limit import SenderLimit, open_limit
from bot.wechat.accounts import Account, token_key
from bot.wechat.client import DEFAULT_API_BASE, WeChatClient
from bot.wechat.crypto import MessageCrypto
from bot.wechat.dedupe import DedupeStore, LocalDedupeStore, MemoryDedupeStore, RedisDedupeStore
from bot.wechat.options import LocalOptionStore, MemoryOptionStore, OptionStore, RedisOptionStore
from bot.wechat.token import (LOCAL_TOKEN_KEY, REDIS_TOKEN_KEY, LocalTokenStore, MemoryTokenStore, RedisTokenStore,
                              TokenStore)

__all__ = ["DEFAULT_MAX_BODY_BYTES", "WeChatConfig", "WeChatResources"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 64 * 1024  # WeChat pushes are a few hundred bytes


@dataclass(frozen=True)
class WeChatConfig:
    """What the channel needs to know; secrets stay out of repr()."""

    token: Optional[str] = field(default=None, repr=False)
    appid: Optional[str] = None
    secret: Optional[str] = field(default=None, repr=False)
    aes_key: Optional[str] = field(default=None, repr=False)
    api_base: str = DEFAULT_API_BASE
    redis_url: Optional[str] = field(default=None, repr=False)  # may carry a password
    database_url: Optional[str] = field(default=None, repr=False)
    state_path: Optional[Path] = None  # the machine's shared state file, used without Redis
    passive_seconds: float = 4.0
    http_timeout: float = 5.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    timestamp_window: int = 300
    sender_rate_per_minute: int = 20  # messages one resident may send a minute (bot/sender_limit.py); 0: no limit

    def __post_init__(self) -> None:
        if not 0 < self.passive_seconds < 5:
            raise ValueError("the passive-reply budget (HG_WECHAT_PASSIVE_SECONDS) must be above 0 and below "
                             f"WeChat's 5 seconds, got {self.passive_seconds}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "WeChatConfig":
        """The configuration from the settings, with `overrides` (None/empty values are ignored) on top."""
        values = dict(
            token=settings.wechat_token, appid=settings.wechat_appid, secret=settings.wechat_secret,
            aes_key=settings.wechat_aes_key, api_base=settings.wechat_api_base, redis_url=settings.redis_url,
            database_url=settings.database_url, state_path=settings.local_state_path,
            passive_seconds=settings.wechat_passive_seconds, http_timeout=settings.http_timeout,
            sender_rate_per_minute=settings.sender_rate_per_minute)
        values.update({k: v for k, v in overrides.items() if v not in (None, "")})
        return cls(**values)  # type: ignore[arg-type]

    def for_account(self, account: Account) -> "WeChatConfig":
        """This configuration with a community's own account's credentials in place of the shared account's."""
        return replace(self, token=account.token, appid=account.appid, secret=account.secret,
                       aes_key=account.aes_key, api_base=account.api_base or self.api_base)

    @property
    def configured(self) -> bool:
        """Whether pushes can be verified at all (a token is set)."""
        return bool(self.token)

    @property
    def can_send(self) -> bool:
        """Whether customer-service messages can be sent (appid and secret are set)."""
        return bool(self.appid and self.secret)

    def crypto(self) -> Optional[MessageCrypto]:
        """The message crypto for safe/compatible mode, or None without an EncodingAESKey; ValueError if invalid."""
        if not self.aes_key:
            return None
        if not self.token or not self.appid:
            raise ValueError("WECHAT_AES_KEY needs WECHAT_TOKEN and WECHAT_APPID as well")
        return MessageCrypto(self.token, self.aes_key, self.appid)


@dataclass
class WeChatResources:
    """Everything the channel keeps open while the server runs."""

    dedupe: DedupeStore
    options: OptionStore
    client: Optional[WeChatClient] = None  # the shared account's
    clients: Dict[str, WeChatClient] = field(default_factory=dict)  # every account that can send, by appid
    http: Optional[aiohttp.ClientSession] = None
    redis: Optional[Any] = None
    limit: SenderLimit = field(default_factory=lambda: open_limit(0))
    state: Optional[LocalState] = None

    def client_for(self, appid: Optional[str]) -> Optional[WeChatClient]:
        """The API client of the account `appid` (None: the shared account), or None if it cannot send."""
        return self.client if appid is None else self.clients.get(appid)

    @classmethod
    async def open(cls, config: WeChatConfig, accounts: Sequence[WeChatConfig] = ()) -> "WeChatResources":
        """Create the HTTP session, an API client for each account with appid and secret (the shared one in
        `config`, communities' own in `accounts`, each with its own access token) and the shared stores."""
        redis_client = None
        state = None
        dedupe: DedupeStore = MemoryDedupeStore()
        options: OptionStore = MemoryOptionStore()
        if config.redis_url:
            import redis.asyncio as aioredis

            redis_client = aioredis.Redis.from_url(config.redis_url, socket_timeout=config.http_timeout,
                                                   socket_connect_timeout=config.http_timeout)
            dedupe = RedisDedupeStore(redis_client)
            options = RedisOptionStore(redis_client)
        elif config.state_path is not None:
            state = LocalState(config.state_path)
            dedupe, options = LocalDedupeStore(state), LocalOptionStore(state)

        def token_store(appid: Optional[str]) -> TokenStore:
            suffix = token_key(appid, config.appid)
            if redis_client is not None:
                return RedisTokenStore(redis_client, key=REDIS_TOKEN_KEY + suffix)
            if state is not None:
                return LocalTokenStore(state, key=LOCAL_TOKEN_KEY + suffix)
            return MemoryTokenStore()

        senders = [c for c in (config, *accounts) if c.can_send]
        http = aiohttp.ClientSession() if senders else None
        clients: Dict[str, WeChatClient] = {}
        for account in senders:
            assert http is not None and account.appid
            clients[account.appid] = WeChatClient(http, account.appid, account.secret or "", account.api_base,
                                                  token_store(account.appid), config.http_timeout)
        client = clients.get(config.appid or "") if config.can_send else None
        kind = "Redis" if redis_client is not None else f"the file {state.path}" if state is not None else "memory"
        log.info("WeChat channel ready (stores in %s, customer-service API %s, %d own account(s) of communities)",
                 kind, "on" if client else "off", len(accounts))
        return cls(dedupe=dedupe, options=options, client=client, clients=clients, http=http, redis=redis_client,
                   state=state, limit=open_limit(config.sender_rate_per_minute, redis_client, state))

    async def close(self) -> None:
        """Close the HTTP session, the Redis connection pool and the state file."""
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self.redis is not None:
            await self.redis.close()
            await self.redis.connection_pool.disconnect()
            self.redis = None
        if self.state is not None:
            self.state.close()
            self.state = None
