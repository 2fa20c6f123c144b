"""One Official Account per community (issue 10): each community of a street office may run its own account.

The shared account (WECHAT_TOKEN, WECHAT_APPID, …) keeps serving /webhooks/wechat/webhook and routes residents to
their community by estate. A community with an account of its own gets /webhooks/wechat/webhook/<community key>,
verified with that account's token and key; a resident who writes there belongs to that community from the first
message, and every later message to them (late replies, ticket updates) goes out through the same account.

The accounts are secrets, so they live outside the community folder: a YAML file named by HG_WECHAT_ACCOUNTS
(default var/wechat_accounts.yml, used when it exists), one entry per community key:

    jinxiu:                      # the community key in its community .yml
      token: …                   # the account's Token (服务器配置)
      appid: wx…                 # AppID
      secret: …                  # AppSecret (optional: without it, only passive replies)
      aes_key: …                 # EncodingAESKey (optional: plaintext mode)
      template_id: …             # ticket-update template (optional, as HG_WECHAT_TEMPLATE_ID)

A malformed file stops the server at start-up with the reason, as a malformed WECHAT_AES_KEY does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import yaml

from bot.services.community import COMMUNITY_KEY
from bot.wechat.crypto import MessageCrypto

__all__ = ["Account", "AccountsError", "load_accounts", "token_key"]

_FIELDS = ("token", "appid", "secret", "aes_key", "template_id", "api_base")


class AccountsError(ValueError):
    """The accounts file cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class Account:
    """A community's own Official Account; secrets stay out of repr()."""

    community: str
    token: str = field(repr=False)
    appid: str
    secret: Optional[str] = field(default=None, repr=False)
    aes_key: Optional[str] = field(default=None, repr=False)
    template_id: Optional[str] = None  # ticket updates outside the 48-hour window (as HG_WECHAT_TEMPLATE_ID)
    api_base: Optional[str] = None  # a local fake in tests; WeChat's own otherwise


def token_key(appid: Optional[str], shared_appid: Optional[str]) -> str:
    """The shared-store key suffix of an account's access token: none for the shared account (the key it always
    had), the appid for a community's own account, so two accounts never overwrite each other's token."""
    return "" if not appid or appid == shared_appid else f":{appid}"


def load_accounts(path: Optional[Path], shared_appid: Optional[str] = None) -> Dict[str, Account]:
    """The accounts in `path` by community key ({} when `path` is None or does not exist); AccountsError if any
    entry is unusable, so a typo never leaves a community silently unserved."""
    if path is None or not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AccountsError(f"{path}: cannot be read as YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise AccountsError(f"{path}: expected community keys mapped to accounts, got {type(data).__name__}")
    accounts: Dict[str, Account] = {}
    seen: Dict[str, str] = {}
    for key, entry in data.items():
        account = _account(path, key, entry)
        if shared_appid and account.appid == shared_appid:
            raise AccountsError(f"{path}: {key}: appid {account.appid} is the shared account's (WECHAT_APPID)")
        if account.appid in seen:
            raise AccountsError(f"{path}: {key}: appid {account.appid} is {seen[account.appid]}'s already")
        seen[account.appid] = key
        accounts[key] = account
    return accounts


def _account(path: Path, key: Any, entry: Any) -> Account:
    if not isinstance(key, str) or not COMMUNITY_KEY.match(key):
        raise AccountsError(f"{path}: {key!r} is not a community key (lower-case letters, digits and -)")
    if not isinstance(entry, Mapping):
        raise AccountsError(f"{path}: {key}: expected {', '.join(_FIELDS)}")
    unknown = sorted(str(k) for k in entry if k not in _FIELDS)
    if unknown:
        raise AccountsError(f"{path}: {key}: unknown field(s) {', '.join(unknown)} (known: {', '.join(_FIELDS)})")
    values = {k: str(entry[k]).strip() for k in _FIELDS if entry.get(k) not in (None, "")}
    for required in ("token", "appid"):
        if not values.get(required):
            raise AccountsError(f"{path}: {key}: {required} is required")
    account = Account(community=key, **values)
    if account.aes_key:
        try:
            MessageCrypto(account.token, account.aes_key, account.appid)
        except ValueError as exc:
            raise AccountsError(f"{path}: {key}: aes_key: {exc}") from None
    return account
