"""The deployed model, served to every Rasa worker in Rasa's model-server protocol, and the admins' model page.

Each Rasa worker asks `GET /models/deployed?token=…` every two seconds (endpoints.yml `models:`, written by
bot/runner.py), with `If-None-Match` naming the model it serves and `X-HG-Worker` naming itself (bot/rasa_boot.py).
The answer is 304 while that is the deployed model, or the deployed model's file with its digest as `ETag`; the
worker then loads it beside the old one and switches over between two messages. Every ask is recorded
(bot/services/models.py `seen`), which is how a deploy knows when every worker serves the new model.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Set

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import deploy
from bot.console.auth import current_staff, require_role
from bot.console.context import Console, console_of
from bot.console.views import json_answer, render
from bot.errors import HongguanjiaError, NotAllowed, NotFound
from bot.services import models, retrain_jobs
from bot.services.scope import ADMIN_ROLES

log = logging.getLogger(__name__)
_rollouts: Set["asyncio.Task[Any]"] = set()  # deploys being waited for (kept so they are not collected)

WORKER_HEADER = "X-HG-Worker"
MODEL_CHUNK = 1 << 20  # bytes per chunk of a model download


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
    path = Path(current.model.path)
    if serving != sha and not path.is_file():
        return response.json({"error": "gone", "message": f"the deployed model's file is missing: {path.name}"},
                             status=503)
    if not await console.run(models.pull, console.factory, worker, serving, sha, console.now()):
        # it serves the deployed model, or waits its turn while another worker loads (it asks again shortly)
        return response.empty(status=304, headers={"ETag": serving or sha})
    # a model is about 200 MB: in Sanic's default 4 KiB chunks its download takes longer than its load
    return await response.file_stream(str(path), chunk_size=MODEL_CHUNK, mime_type="application/gzip",
                                      headers={"ETag": sha, "filename": current.model.served_name})


# --- the admins' page: retrain, compare, deploy, roll back --------------------------------------------------

def _state(console: Console) -> Dict[str, Any]:
    current = models.deployed(console.factory)
    rollout = models.rollout(console.factory, current.model.sha256) if current else None
    job = retrain_jobs.current(console.settings)
    return {
        "deployed": {"version": current.model.id, "file": current.model.file, "actor": current.actor,
                     "action": current.action, "at": f"{current.at:%Y-%m-%d %H:%M}"} if current else None,
        "workers": [{"worker": w.worker, "serves_deployed": w.sha256 == current.model.sha256,
                     "loading": bool(w.fetching and w.fetching != w.sha256)} for w in rollout.workers]
        if current and rollout else [],
        "rolled_out": bool(rollout and rollout.done),
        "job": job.as_dict() if job else None,
    }


async def _page(request: Request, status: int = 200, error: Optional[str] = None,
                done: Optional[str] = None) -> HTTPResponse:
    console = console_of(request)
    state = await console.run(_state, console)
    versions = await console.run(models.versions, console.factory, 30)
    history = await console.run(models.history, console.factory, 30)
    manages = await console.run(models.may_manage, console.factory, current_staff(request).key)
    return render(request, "admin_models.html", status=status, state=state, versions=versions, history=history,
                  job=state["job"], error=error, done=done or DONE.get(request.args.get("done") or ""),
                  manages=manages)


# The page offers no button to staff who do not manage the model; a form posted anyway (a page left open while a
# second community was loaded) is answered with why.
NOT_YOURS = "本系统服务几个社区，共用一个模型：重新训练、上线和回退由街道管理员操作。"
DONE = {"retrain": "已开始重新训练，进度见下方。", "deploy": "已上线，正在等每个 Rasa 进程换上新模型。",
        "rollback": "已回退，正在等每个 Rasa 进程换回上一版。"}


@require_role(*ADMIN_ROLES)
async def models_page(request: Request) -> HTTPResponse:
    """GET /admin/models: the model in use, retraining, the versions with their comparison, deploy history."""
    return await _page(request)


@require_role(*ADMIN_ROLES)
async def models_state(request: Request) -> HTTPResponse:
    """GET /admin/models/state: the retrain's progress and what each Rasa worker serves (the page polls it)."""
    console = console_of(request)
    return json_answer(await console.run(_state, console))


@require_role(*ADMIN_ROLES)
async def models_retrain(request: Request) -> HTTPResponse:
    """POST /admin/models/retrain: start a retrain in its own process (one at a time)."""
    console = console_of(request)
    try:
        await console.run(retrain_jobs.start, console.settings, console.factory, current_staff(request).key,
                          console.now())
    except NotAllowed:
        return await _page(request, status=403, error=NOT_YOURS)
    except HongguanjiaError as exc:
        return await _page(request, status=409, error=f"没有开始：{exc}")
    return response.redirect("/admin/models?done=retrain", status=303)


def _wait_in_background(request: Request, done: models.DeploymentView) -> None:
    """Wait for every worker to take the model, and undo the change if one does not (bot/deploy.py `finish`);
    the waiting stops when the console stops."""
    console, stopping = console_of(request), request.app.ctx.models_stopping

    async def wait() -> None:
        try:
            await console.run(deploy.finish, console.factory, console.settings, done, log=log.info,
                              stopped=stopping.is_set)
        except deploy.RolloutFailed as exc:
            log.warning("model %s did not reach every worker and was undone: %s", done.model.label, exc)
        except (deploy.Superseded, deploy.NoWorkers) as exc:
            log.info("stopped waiting for model %s: %s", done.model.label, exc)
        except Exception:  # noqa: BLE001 - a background task: log it, the page shows the registry's state
            log.exception("waiting for model %s failed", done.model.label)

    task = asyncio.get_running_loop().create_task(wait())
    _rollouts.add(task)
    task.add_done_callback(_rollouts.discard)


def _reason(request: Request) -> Optional[str]:
    return (request.form.get("reason") or "").strip()[:200] or None


@require_role(*ADMIN_ROLES)
async def models_deploy(request: Request, model_id: int) -> HTTPResponse:
    """POST /admin/models/<id>/deploy: serve a model whose comparison passed."""
    console = console_of(request)
    try:
        done = await console.run(models.deploy, console.factory, model_id, staff_key=current_staff(request).key,
                                 reason=_reason(request), now=console.now())
    except NotAllowed:
        return await _page(request, status=403, error=NOT_YOURS)
    except HongguanjiaError as exc:
        return await _page(request, status=409 if not isinstance(exc, NotFound) else 404, error=f"没有上线：{exc}")
    _wait_in_background(request, done)
    return response.redirect("/admin/models?done=deploy", status=303)


@require_role(*ADMIN_ROLES)
async def models_rollback(request: Request) -> HTTPResponse:
    """POST /admin/models/rollback: serve again the model served before the latest deploy."""
    console = console_of(request)
    try:
        done = await console.run(models.rollback, console.factory, current_staff(request).key, _reason(request),
                                 console.now())
    except NotAllowed:
        return await _page(request, status=403, error=NOT_YOURS)
    except HongguanjiaError as exc:
        return await _page(request, status=409, error=f"没有回退：{exc}")
    _wait_in_background(request, done)
    return response.redirect("/admin/models?done=rollback", status=303)


def _report(version: models.ModelView) -> Dict[str, Any]:
    folder = Path(version.report) if version.report else None
    if folder is None or not (folder / "report.json").is_file():
        raise NotFound("这个模型没有对比报告", model=version.id)
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


@require_role(*ADMIN_ROLES)
async def models_report(request: Request, model_id: int) -> HTTPResponse:
    """GET /admin/models/<id>/report: per-intent F1 before and after, the messages whose prediction changed."""
    console = console_of(request)
    version = await console.run(models.get, console.factory, model_id)
    report = await console.run(_report, version)
    return render(request, "admin_model_report.html", version=version, report=report)


@require_role(*ADMIN_ROLES)
async def models_confusion(request: Request, model_id: int) -> HTTPResponse:
    """GET /admin/models/<id>/confusion.png: the candidate's confusion matrix on the held-out files."""
    console = console_of(request)
    version = await console.run(models.get, console.factory, model_id)
    image = Path(version.report or "") / "confusion.png"
    if not version.report or not image.is_file():
        raise NotFound("这个模型没有混淆矩阵图", model=model_id)
    return await response.file(str(image), mime_type="image/png")


def register_models(app: Sanic) -> None:
    """Add the model-server endpoint and the admins' model page to the console app."""
    app.ctx.models_stopping = threading.Event()

    async def stop_waiting(app: Sanic, _loop: object) -> None:
        app.ctx.models_stopping.set()

    app.register_listener(stop_waiting, "before_server_stop")
    app.add_route(deployed_model, "/models/deployed", methods=["GET"], name="models_deployed")
    app.add_route(models_page, "/admin/models", methods=["GET"], name="admin_models")
    app.add_route(models_state, "/admin/models/state", methods=["GET"], name="admin_models_state")
    app.add_route(models_retrain, "/admin/models/retrain", methods=["POST"], name="admin_models_retrain")
    app.add_route(models_rollback, "/admin/models/rollback", methods=["POST"], name="admin_models_rollback")
    app.add_route(models_deploy, "/admin/models/<model_id:int>/deploy", methods=["POST"], name="admin_models_deploy")
    app.add_route(models_report, "/admin/models/<model_id:int>/report", methods=["GET"], name="admin_models_report")
    app.add_route(models_confusion, "/admin/models/<model_id:int>/confusion.png", methods=["GET"],
                  name="admin_models_confusion")
