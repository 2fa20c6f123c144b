"""Settings read once from the environment (and a local `.env` file)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def read_env_file(path: Path) -> Dict[str, str]:
    """Parse a `.env` file of KEY=VALUE lines; comments and blank lines are skipped."""
    values: Dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"setting {key} must be a whole number, got {raw!r}") from exc


def _flag(env: Mapping[str, str], key: str) -> bool:
    raw = (env.get(key) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"setting {key} must be 1 or 0, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    """Everything the runtime needs to know about its environment."""

    var_dir: Path
    database_url: str
    community_dir: Path
    redis_url: Optional[str]
    timezone: str
    wecom_webhook_url: str
    notify_log: Path
    dispatch_interval: float
    dispatch_max_attempts: int
    robot_rate_per_minute: int
    http_timeout: float
    rasa_port: int
    action_port: int
    rasa_token: Optional[str]
    extra: Dict[str, str] = field(default_factory=dict, repr=False)  # may hold tokens
    # WeChat Official Account; the secrets stay out of repr() so a logged Settings leaks nothing.
    wechat_token: Optional[str] = field(default=None, repr=False)
    wechat_appid: Optional[str] = None
    wechat_secret: Optional[str] = field(default=None, repr=False)
    wechat_aes_key: Optional[str] = field(default=None, repr=False)
    wechat_api_base: str = "https://api.weixin.qq.com"
    # How long a WeChat push may wait for the assistant before we answer `success` and reply later
    # through the customer-service API (WeChat gives up after 5 s).
    wechat_passive_seconds: float = 4.0
    # The WeChat-style web chat page (HG_WEBCHAT=1): a local/demo tool, and it serves only on the demo
    # account's credentials with a local fake WeChat API (bot/channels/webchat.py).
    webchat: bool = False
    # Bearer token of the REST channel (HG_REST_TOKEN); required whenever WeChat runs on a real account.
    rest_token: Optional[str] = field(default=None, repr=False)

    @property
    def rasa_url(self) -> str:
        """Base URL of the local Rasa server."""
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def action_endpoint_url(self) -> str:
        """URL the Rasa server calls to run custom actions."""
        return f"http://127.0.0.1:{self.action_port}/webhook"

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, env_file: Optional[Path] = None) -> "Settings":
        """Build settings from `env` (default: os.environ) over the values of `.env`."""
        merged: Dict[str, str] = dict(read_env_file(env_file or PROJECT_ROOT / ".env"))
        merged.update(os.environ if env is None else env)
        var_dir = Path(merged.get("HG_VAR_DIR") or PROJECT_ROOT / "var")
        database_url = merged.get("DATABASE_URL") or f"sqlite:///{var_dir / 'hongguanjia.db'}"
        return cls(
            var_dir=var_dir,
            database_url=database_url,
            community_dir=Path(merged.get("HG_COMMUNITY_DIR") or PROJECT_ROOT / "data" / "community"),
            redis_url=merged.get("REDIS_URL") or None,
            timezone=merged.get("HG_TIMEZONE") or "Asia/Shanghai",
            wecom_webhook_url=merged.get("WECOM_WEBHOOK_URL")
            or "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
            notify_log=Path(merged.get("HG_NOTIFY_LOG") or var_dir / "notifications.log"),
            dispatch_interval=float(merged.get("HG_DISPATCH_INTERVAL") or 1.0),
            dispatch_max_attempts=_int(merged, "HG_DISPATCH_MAX_ATTEMPTS", 8),
            robot_rate_per_minute=_int(merged, "HG_ROBOT_RATE_PER_MINUTE", 20),
            http_timeout=float(merged.get("HG_HTTP_TIMEOUT") or 5.0),
            rasa_port=_int(merged, "HG_RASA_PORT", 5005),
            action_port=_int(merged, "HG_ACTION_PORT", 5055),
            rasa_token=merged.get("HG_RASA_TOKEN") or None,
            extra={k: v for k, v in merged.items() if k.startswith("HG_")},
            wechat_token=merged.get("WECHAT_TOKEN") or None,
            wechat_appid=merged.get("WECHAT_APPID") or None,
            wechat_secret=merged.get("WECHAT_SECRET") or None,
            wechat_aes_key=merged.get("WECHAT_AES_KEY") or None,
            wechat_api_base=merged.get("WECHAT_API_BASE") or "https://api.weixin.qq.com",
            wechat_passive_seconds=float(merged.get("HG_WECHAT_PASSIVE_SECONDS") or 4.0),
            webchat=_flag(merged, "HG_WEBCHAT"),
            rest_token=merged.get("HG_REST_TOKEN") or None,
        )


def rasa_env(base: Optional[Mapping[str, str]] = None, **extra: str) -> Dict[str, str]:
    """Environment for Rasa processes: no telemetry or error reports leave the machine, less TF noise."""
    env = dict(os.environ if base is None else base)
    env.update(RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    env.update(extra)
    return env
