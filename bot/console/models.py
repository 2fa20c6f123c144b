"""The deployed model, served to every Rasa worker in Rasa's model-server protocol, and the admins' model page.

Each Rasa worker asks `GET /models/deployed?token=…` every two seconds (endpoints.yml `models:`, written by
bot/runner.py), with `If-None-Match` naming the model it serves and `X-HG-Worker` naming itself (bot/rasa_boot.py).
The answer is 304 while that is the deployed model, or the deployed model's file with its digest as `ETag`; the
worker then loads it beside the old one and switches over between two messages. Every ask is recorded
(bot/services/models.py `seen`), which is how a deploy knows when every worker serves the new model.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Optional

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.console.context import console_of
from bot.services import models

WORKER_HEADER = "X-HG-Worker"


def _token_ok(request: Request, expected: Optional[str]) -> bool:
    given = request.args.get("token") or ""
    return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


async def deployed_model(request: Request) -> HTTPResponse:
    """GET /models/deployed: the model every Rasa worker is to serve (Rasa's model-server protocol)."""
    console = console_of(request)
    if not _token_ok(request, console.settings.rasa_token):
        return response.json({"error": "unauthorized", "message": "a valid token is required"}, status=401)
    current = await console.run(models.deployed, console.factory)
    worker = request.headers.get(WORKER_HEADER) or f"{request.ip}:{request.port}"
    serving = (request.headers.get("If-None-Match") or "").strip().strip('"') or None
    if current is None:
        await console.run(models.seen, console.factory, worker, serving, console.now())
        return response.json({"error": "not_found", "message": "no model is deployed yet"}, status=404)
    sha = current.model.sha256
    if serving == sha:
        await console.run(models.seen, console.factory, worker, serving, console.now())
        return response.empty(status=304, headers={"ETag": sha})
    path = Path(current.model.path)
    if not path.is_file():
        return response.json({"error": "gone", "message": f"the deployed model's file is missing: {path.name}"},
                             status=503)
    await console.run(models.seen, console.factory, worker, serving, console.now(), sha)
    return await response.file_stream(str(path), headers={"ETag": sha, "filename": current.model.served_name},
                                      mime_type="application/gzip")


def register_models(app: Sanic) -> None:
    """Add the model-server endpoint to the console app."""
    app.add_route(deployed_model, "/models/deployed", methods=["GET"], name="models_deployed")
