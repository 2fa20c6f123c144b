"""The demo Official Account: published, non-secret credentials for `make run`, the web chat page and tests.

These values are in the repository, so they can never be a real account's secrets; the web chat page
serves only while the channel runs on exactly these (see bot/channels/webchat.py).
"""

from __future__ import annotations

import ipaddress
from typing import Dict
from urllib.parse import urlsplit

__all__ = ["DEMO_ACCOUNT", "DEMO_AES_KEY", "DEMO_APPID", "DEMO_SECRET", "DEMO_TOKEN", "demo_env", "is_loopback_url"]

DEMO_TOKEN = "hongguanjia-demo-token"
DEMO_APPID = "wxdemo0000hongguanjia"
DEMO_SECRET = "hongguanjia-demo-secret"
DEMO_AES_KEY = "ta4NXo9cStrumr8VLpgvTysY7uiDxv1j4LlIRvfcY/c"  # 43 characters: safe (AES) mode
DEMO_ACCOUNT = "gh_hongxing_demo"  # the account's own id (ToUserName of every push)


def demo_env(api_base: str) -> Dict[str, str]:
    """Environment variables that put the WeChat channel on the demo account in safe mode, talking to `api_base`."""
    return {"WECHAT_TOKEN": DEMO_TOKEN, "WECHAT_APPID": DEMO_APPID, "WECHAT_SECRET": DEMO_SECRET,
            "WECHAT_AES_KEY": DEMO_AES_KEY, "WECHAT_API_BASE": api_base}


def is_loopback_url(url: str) -> bool:
    """Whether `url` points at this machine (a local fake), never at WeChat's servers."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost could resolve anywhere
        return False
