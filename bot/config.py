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


def _workers(env: Mapping[str, str]) -> int:
    workers = _int(env, "HG_RASA_WORKERS", 2)
    if workers < 1:
        raise ValueError(f"setting HG_RASA_WORKERS must be 1 or more, got {workers}")
    return workers


DEFAULT_TEMPLATE_FIELDS = {"number": "keyword1", "status": "keyword2", "detail": "remark"}


def _fields(raw: Optional[str]) -> Dict[str, str]:
    if not raw:
        return dict(DEFAULT_TEMPLATE_FIELDS)
    pairs = [p.split("=", 1) for p in raw.split(",") if p.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise ValueError(f"setting HG_WECHAT_TEMPLATE_FIELDS must look like number=keyword1,status=keyword2, got {raw!r}")
    return {k.strip(): v.strip() for k, v in pairs}


def _clock_time(env: Mapping[str, str], key: str, default: str) -> str:
    raw = (env.get(key) or default).strip()
    hours, _, minutes = raw.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60 and len(minutes) == 2):
        raise ValueError(f"setting {key} must be a time like 22:00, got {raw!r}")
    return f"{int(hours):02d}:{minutes}"


@dataclass(frozen=True)
class EscalationSettings:
    """How long a ticket may wait before someone more senior is told, and when night hours are."""

    urgent_accept_minutes: int = 15  # an urgent ticket nobody accepted
    normal_accept_hours: int = 24  # a normal ticket nobody accepted
    urgent_resolve_hours: int = 4  # deadline after acceptance
    normal_resolve_hours: int = 72
    night_start: str = "22:00"  # urgent tickets also reach the duty roster's night staff
    night_end: str = "07:00"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "EscalationSettings":
        """Read HG_ESCALATE_* and HG_NIGHT_* settings."""
        return cls(urgent_accept_minutes=_int(env, "HG_ESCALATE_URGENT_ACCEPT_MINUTES", 15),
                   normal_accept_hours=_int(env, "HG_ESCALATE_NORMAL_ACCEPT_HOURS", 24),
                   urgent_resolve_hours=_int(env, "HG_RESOLVE_URGENT_HOURS", 4),
                   normal_resolve_hours=_int(env, "HG_RESOLVE_NORMAL_HOURS", 72),
                   night_start=_clock_time(env, "HG_NIGHT_START", "22:00"),
                   night_end=_clock_time(env, "HG_NIGHT_END", "07:00"))


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
    # Communities with an Official Account of their own (bot/wechat/accounts.py); used when the file exists.
    wechat_accounts_file: Optional[Path] = None
    # How long a WeChat push may wait for the assistant before we answer `success` and reply later
    # through the customer-service API (WeChat gives up after 5 s).
    wechat_passive_seconds: float = 4.0
    # The WeChat-style web chat page (HG_WEBCHAT=1): a local/demo tool, and it serves only on the demo
    # account's credentials with a local fake WeChat API (bot/channels/webchat.py).
    webchat: bool = False
    # Staff side (bot/services/lifecycle.py, bot/services/escalation.py): deadlines and night hours.
    escalation: "EscalationSettings" = field(default_factory=lambda: EscalationSettings())
    # WeChat template message for residents outside the 48-hour customer-service window (empty: none set up).
    wechat_template_id: str = ""
    # Our fields → the template's keys, e.g. "number=keyword1,status=keyword2,detail=remark".
    wechat_template_fields: Dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TEMPLATE_FIELDS))
    # The staff console (bot/console/): its own Sanic process.
    console_host: str = "127.0.0.1"
    console_port: int = 5010
    console_base_url: str = "http://127.0.0.1:5010"  # also where WeCom cards link to
    # Signs the console's cookies; when unset, one is generated and kept in var/console_secret.
    console_secret: Optional[str] = field(default=None, repr=False)
    console_secure_cookies: bool = False
    console_session_idle_hours: float = 12.0
    console_max_failed_logins: int = 5
    console_lockout_minutes: int = 15
    # Console processes (Sanic workers) serving the same port; sessions and lock-outs live in the database.
    console_workers: int = 2
    # Bearer token of the REST channel (HG_REST_TOKEN); required whenever WeChat runs on a real account.
    rest_token: Optional[str] = field(default=None, repr=False)
    # Rasa server worker processes (HG_RASA_WORKERS, passed on as SANIC_WORKERS); each loads the model.
    rasa_workers: int = 2
    # Where the labels admins accept in the console's review are written (HG_REVIEWED_DIR); training reads it.
    reviewed_dir: Path = PROJECT_ROOT / "data" / "nlu" / "reviewed"
    # How long the dispatcher leader's lease lasts (HG_DISPATCH_LEASE_SECONDS): a dispatcher standing by takes
    # over at most this long after the leader died.
    dispatch_lease_seconds: float = 10.0
    # Abuse limits: messages one sender may send a minute (HG_SENDER_RATE_PER_MINUTE), and tickets one resident
    # may have open at once (HG_MAX_OPEN_TICKETS); 0 switches a limit off.
    sender_rate_per_minute: int = 20
    max_open_tickets: int = 5

    @property
    def local_state_path(self) -> Path:
        """The state file the processes of this machine share without Redis (bot/local_state.py)."""
        return self.var_dir / "local_state.db"

    @property
    def rasa_url(self) -> str:
        """Base URL of the local Rasa server."""
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def action_endpoint_url(self) -> str:
        """URL the Rasa server calls to run custom actions: this machine's action port (nginx in production mode),
        unless HG_ACTION_ENDPOINT_URL names another (action servers on machines of their own)."""
        return self.extra.get("HG_ACTION_ENDPOINT_URL") or f"http://127.0.0.1:{self.action_port}/webhook"

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, env_file: Optional[Path] = None) -> "Settings":
        """Build settings from `env` (default: os.environ) over the values of `.env`."""
        merged: Dict[str, str] = dict(read_env_file(env_file or PROJECT_ROOT / ".env"))
        merged.update(os.environ if env is None else env)
        var_dir = Path(merged.get("HG_VAR_DIR") or PROJECT_ROOT / "var")
        database_url = merged.get("DATABASE_URL") or f"sqlite:///{var_dir / 'hongguanjia.db'}"
        console_port = _int(merged, "HG_CONSOLE_PORT", 5010)
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
            # 12 tries over about 24 minutes (2 s doubling, at most 5 min apart): a WeCom outage of that long
            # delays cards without losing them.
            dispatch_max_attempts=_int(merged, "HG_DISPATCH_MAX_ATTEMPTS", 12),
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
            wechat_accounts_file=PROJECT_ROOT / (merged.get("HG_WECHAT_ACCOUNTS") or var_dir / "wechat_accounts.yml"),
            wechat_passive_seconds=float(merged.get("HG_WECHAT_PASSIVE_SECONDS") or 4.0),
            webchat=_flag(merged, "HG_WEBCHAT"),
            escalation=EscalationSettings.from_env(merged),
            wechat_template_id=merged.get("HG_WECHAT_TEMPLATE_ID") or "",
            wechat_template_fields=_fields(merged.get("HG_WECHAT_TEMPLATE_FIELDS")),
            console_host=merged.get("HG_CONSOLE_HOST") or "127.0.0.1",
            console_port=console_port,
            console_base_url=(merged.get("HG_CONSOLE_BASE_URL") or f"http://127.0.0.1:{console_port}").rstrip("/"),
            console_secret=merged.get("HG_CONSOLE_SECRET") or None,
            console_secure_cookies=_flag(merged, "HG_CONSOLE_SECURE_COOKIES"),
            console_session_idle_hours=float(merged.get("HG_CONSOLE_SESSION_IDLE_HOURS") or 12.0),
            console_max_failed_logins=_int(merged, "HG_CONSOLE_MAX_FAILED_LOGINS", 5),
            console_lockout_minutes=_int(merged, "HG_CONSOLE_LOCKOUT_MINUTES", 15),
            console_workers=max(1, _int(merged, "HG_CONSOLE_WORKERS", 2)),
            rest_token=merged.get("HG_REST_TOKEN") or None,
            rasa_workers=_workers(merged),
            reviewed_dir=Path(merged.get("HG_REVIEWED_DIR") or PROJECT_ROOT / "data" / "nlu" / "reviewed"),
            dispatch_lease_seconds=float(merged.get("HG_DISPATCH_LEASE_SECONDS") or 10.0),
            sender_rate_per_minute=max(0, _int(merged, "HG_SENDER_RATE_PER_MINUTE", 20)),
            max_open_tickets=max(0, _int(merged, "HG_MAX_OPEN_TICKETS", 5)),
        )


def rasa_env(base: Optional[Mapping[str, str]] = None, **extra: str) -> Dict[str, str]:
    """Environment for Rasa processes: no telemetry or error reports leave the machine, less TF noise."""
    env = dict(os.environ if base is None else base)
    env.update(RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    env.update(extra)
    return env
