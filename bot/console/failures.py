"""The one place errors become answers: a Chinese message page for pages, `{"error": …}` JSON under /api/.

Services raise bot/errors.py exceptions (NotFound, NotAllowed, InvalidState, InvalidInput…); handlers let
them through and this handler picks the status: NotFound 404, NotAllowed 403, InvalidState 409,
InvalidInput 400 (with the field), AuthFailed 401; Sanic's own (unknown route, wrong method, body too big)
keep theirs; anything else is a logged 500 that shows no internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional

from sanic import response
from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.console import texts
from bot.console.security import CsrfRejected
from bot.console.views import json_answer, render
from bot.errors import AuthFailed, HongguanjiaError, InvalidInput, InvalidState, NotAllowed, NotFound

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """How an exception is answered: status, machine code, Chinese message, and extra JSON fields."""

    status: int
    code: str
    message: str
    detail: Optional[str] = None
    field: Optional[str] = None


def describe(exception: BaseException) -> Failure:
    """The answer for `exception`."""
    if isinstance(exception, CsrfRejected):
        return Failure(403, exception.code, texts.CSRF_REJECTED)
    if isinstance(exception, NotAllowed):
        return Failure(403, exception.code, texts.NOT_ALLOWED, exception.message)
    if isinstance(exception, NotFound):
        return Failure(404, exception.code, texts.NOT_FOUND, exception.message)
    if isinstance(exception, InvalidState):
        return Failure(409, exception.code, texts.INVALID_STATE, exception.message)
    if isinstance(exception, InvalidInput):
        message = texts.INVALID_FIELD.format(field=exception.field) if exception.field else texts.INVALID_INPUT
        return Failure(400, exception.code, message, exception.message, exception.field)
    if isinstance(exception, AuthFailed):
        return Failure(401, exception.code, texts.WRONG_CREDENTIALS)
    if isinstance(exception, HongguanjiaError):
        return Failure(500, exception.code, texts.SERVER_ERROR)
    if isinstance(exception, SanicException):
        status = int(getattr(exception, "status_code", 500) or 500)
        if status == 404:
            return Failure(404, "not_found", texts.NOT_FOUND)
        if status < 500:
            return Failure(status, "bad_request", texts.ERROR_TITLES.get(status, texts.INVALID_INPUT))
        return Failure(status, "server_error", texts.SERVER_ERROR)
    return Failure(500, "server_error", texts.SERVER_ERROR)


def wants_json(request: Optional[Request]) -> bool:
    """True for API requests (answered in JSON)."""
    return request is not None and request.path.startswith("/api/")


def error_json(failure: Failure) -> HTTPResponse:
    """The API's error body: `{"error": message, "code": …}` plus `detail` and `field` when known."""
    body: Dict[str, Any] = {"error": failure.message, "code": failure.code}
    if failure.detail:
        body["detail"] = failure.detail
    if failure.field:
        body["field"] = failure.field
    return json_answer(body, status=failure.status)


class ConsoleErrorHandler(ErrorHandler):
    """Sanic's error handler for the console: every uncaught exception goes through `describe`."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        """The answer to `exception` on `request` (JSON for /api/, the message page otherwise)."""
        failure = describe(exception)
        if failure.status >= 500:
            logger.error("console: %s %s failed", getattr(request, "method", "?"), getattr(request, "path", "?"),
                         exc_info=exception)
        if request is None or wants_json(request):
            return _with_headers(error_json(failure), exception)
        try:
            return _with_headers(render(request, "message.html", status=failure.status,
                                        title=texts.ERROR_TITLES.get(failure.status, texts.ERROR_TITLES[500]),
                                        message=failure.message), exception)
        except Exception:  # noqa: BLE001 - the error page itself failed: answer plainly rather than not at all
            logger.exception("console: the error page could not be rendered")
            return response.text(failure.message, status=failure.status)


def _with_headers(answer: HTTPResponse, exception: BaseException) -> HTTPResponse:
    """Keep the headers Sanic's own exception carries (a 405's `Allow`, required by RFC 9110)."""
    for name, value in (getattr(exception, "headers", None) or {}).items():
        answer.headers[name] = value
    return answer
