"""The console's web security pieces: the cookie secret, signed cookies, CSRF checks, safe redirects, headers."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from itsdangerous import BadSignature, Signer
from sanic.response import HTTPResponse

from bot.config import Settings
from bot.errors import NotAllowed

SESSION_COOKIE = "hg_sid"
LOGIN_COOKIE = "hg_login"  # the pre-session CSRF nonce of the login form
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SECRET_FILE = "console_secret"
MIN_SECRET_LENGTH = 16

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class CsrfRejected(NotAllowed):
    """A state-changing request without the right CSRF token (stale page, or a request forged elsewhere)."""

    code = "csrf"


def console_secret(settings: Settings) -> str:
    """HG_CONSOLE_SECRET, or the generated secret in var/console_secret (created once, mode 0600)."""
    if settings.console_secret:
        if len(settings.console_secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"HG_CONSOLE_SECRET must be at least {MIN_SECRET_LENGTH} characters long")
        return settings.console_secret
    path = settings.var_dir / SECRET_FILE
    existing = _read_secret(path)
    if existing:
        return existing
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_urlsafe(48))
    try:
        os.link(tmp, path)  # atomic, and fails if another process got there first: then theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    secret = _read_secret(path)
    if not secret:
        raise RuntimeError(f"could not create the console secret in {path}")
    return secret


def _read_secret(path: Path) -> Optional[str]:
    if not path.is_file():
        return None
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return path.read_text(encoding="utf-8").strip() or None


class CookieSigner:
    """Signs and checks cookie values with the console secret; a bad or missing signature reads as None."""

    def __init__(self, secret: str, secure: bool) -> None:
        self._signers = {name: Signer(secret, salt=f"hongguanjia.console.{name}")
                         for name in (SESSION_COOKIE, LOGIN_COOKIE)}
        self.secure = secure

    def read(self, name: str, raw: Optional[str]) -> Optional[str]:
        """The value a signed cookie carries, or None when it is absent, unsigned or tampered with."""
        if not raw:
            return None
        try:
            return self._signers[name].unsign(raw).decode("utf-8")
        except (BadSignature, UnicodeDecodeError):
            return None

    def set(self, response: HTTPResponse, name: str, value: str) -> None:
        """Put `value`, signed, in cookie `name` (HttpOnly, SameSite=Lax, path /, Secure when configured)."""
        response.cookies[name] = self._signers[name].sign(value).decode("utf-8")
        self._flags(response, name)

    def clear(self, response: HTTPResponse, name: str) -> None:
        """Tell the browser to drop cookie `name`."""
        response.cookies[name] = ""
        response.cookies[name]["max-age"] = 0
        self._flags(response, name)

    def _flags(self, response: HTTPResponse, name: str) -> None:
        cookie = response.cookies[name]
        cookie["path"] = "/"
        cookie["httponly"] = True
        cookie["samesite"] = "Lax"
        if self.secure:
            cookie["secure"] = True


def tokens_match(expected: Optional[str], given: Optional[str]) -> bool:
    """Constant-time comparison of a CSRF token with what the request carried; missing never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def safe_next(target: Optional[str], default: str = "/") -> str:
    """`target` when it is a path on this site (no scheme, host or `//`), else `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
