"""The REST channel residents' apps and tests use: Rasa's REST format, with input checked and cleaned."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import messages
from bot.text import clean_message

logger = logging.getLogger(__name__)
MAX_SENDER_CHARS = 128


class ResidentRestInput(RestInput):
    """POST /webhooks/rest/webhook with {"sender": …, "message": …}; answers a JSON list of replies."""

    @classmethod
    def name(cls) -> Text:
        """Served under /webhooks/rest/, like Rasa's own REST channel."""
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Routes: GET / (health) and POST /webhook."""
        hook = Blueprint("resident_rest_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # noqa: BLE001 - sanic raises its own error types for bad JSON
                body = None
            problem = _problem(body)
            if problem:
                return response.json({"error": problem}, status=400)
            sender = str(body["sender"])
            text = clean_message(body.get("message"))
            if not text:
                return response.json([{"recipient_id": sender, "text": messages.EMPTY_MESSAGE}])
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(text, collector, sender, input_channel=self.name(),
                                                 metadata=self.get_metadata(request)))
            except Exception:  # noqa: BLE001 - the resident must still get an answer
                logger.exception("turn failed for sender %s", sender)
                return response.json([{"recipient_id": sender, "text": messages.TURN_FAILED}])
            return response.json(collector.messages)

        return hook


def _problem(body: Optional[Dict[str, Any]]) -> Optional[str]:
    if not isinstance(body, dict):
        return "body must be a JSON object with 'sender' and 'message'"
    sender = body.get("sender")
    if not isinstance(sender, (str, int)) or not str(sender).strip() or len(str(sender)) > MAX_SENDER_CHARS:
        return f"'sender' must be a non-empty string of at most {MAX_SENDER_CHARS} characters"
    if "message" in body and body["message"] is not None and not isinstance(body["message"], str):
        return "'message' must be a string"
    return None
