"""Deploy and roll back a model on every running Rasa worker, without a restart (DESIGN.md story 9).

    python -m bot model deploy MODEL --as ADMIN [--reason TEXT]   # a model whose gate passed
    python -m bot model rollback --as ADMIN [--reason TEXT]       # the model served before the latest deploy
    python -m bot model list                                      # versions, deployments, workers

A deploy is a row in the registry (bot/services/models.py); every Rasa worker asks the console for the deployed
model every two seconds and loads a new one beside the old (bot/console/models.py, bot/rasa_boot.py), so a
conversation in progress goes on. The command waits until every live worker says it serves the new model and
Rasa's authenticated `GET /status` answers with it. If that does not happen in time, the deploy is undone
(`restore`) and the command fails: the workers go back to, or stay on, the model they had.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, List, Optional

from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.errors import HongguanjiaError
from bot.services import models

ROLLOUT_TIMEOUT_S = 180.0
COMMANDS = ("deploy", "rollback", "list")


class RolloutFailed(Exception):
    """A model did not reach every live worker in time."""


class Superseded(Exception):
    """Another deploy or rollback was made while this one was being waited for (that one is in force now), or
    the waiting was stopped; the deployment is left as it is."""


class NoWorkers(Exception):
    """No Rasa worker is running: the deployment stays in force, and workers serve it when they start."""


def wait_rollout(factory: sessionmaker, sha256: str, timeout: float = ROLLOUT_TIMEOUT_S,
                 poll: float = 0.5, deployment: Optional[int] = None,
                 stopped: Callable[[], bool] = lambda: False) -> models.Rollout:
    """Wait until every live Rasa worker serves `sha256`; RolloutFailed names those that do not, NoWorkers says
    none is running. With `deployment`, Superseded as soon as that deployment is no longer the one in force (or
    `stopped()` is true)."""
    deadline = time.monotonic() + timeout
    while True:
        state = models.rollout(factory, sha256)
        if state.done:
            return state
        if stopped():
            raise Superseded("stopped waiting")
        if deployment is not None:
            current = models.deployed(factory)
            if current is None or current.id != deployment:
                raise Superseded(f"v{current.model.id if current else '?'} was deployed meanwhile")
        if time.monotonic() >= deadline:
            if not state.workers:
                raise NoWorkers("没有正在运行的 Rasa：它们启动后会用这个模型")
            pending = ", ".join(f"{w.worker} ({(w.sha256 or '无模型')[:12]})" for w in state.pending)
            raise RolloutFailed(f"{timeout:.0f} 秒内没有全部换上：{pending or '没有正在运行的 Rasa'}")
        time.sleep(poll)


def rasa_status(settings: Settings, timeout: float = 10) -> dict:
    """Rasa's authenticated GET /status."""
    url = f"{settings.rasa_url}/status?token={urllib.request.quote(settings.rasa_token or '')}"
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own server
        return json.loads(resp.read().decode("utf-8"))


def _confirm_with_rasa(settings: Settings, model: models.ModelView, tries: int = 4) -> None:
    """Rasa's own status names the new model (asked a few times, over new connections, so several workers
    are likely to answer)."""
    if not settings.rasa_token:
        return
    for _ in range(tries):
        status = rasa_status(settings)
        if status.get("model_file") != model.served_name:
            raise RolloutFailed(f"Rasa 的 /status 还是别的模型：{status.get('model_file')}")


def finish(factory: sessionmaker, settings: Settings, done: models.DeploymentView,
           timeout: float = ROLLOUT_TIMEOUT_S, log: Callable[[str], None] = print,
           stopped: Callable[[], bool] = lambda: False) -> models.Rollout:
    """Wait until every worker serves the model of deployment `done`; undo it (`restore`) if they do not.
    Superseded if another deploy or rollback is made meanwhile (that one is then waited for by whoever made it)."""
    log(f"model: {done.action} v{done.model.id} ({done.model.file}); waiting for every Rasa worker …")
    started = time.monotonic()
    try:
        state = wait_rollout(factory, done.model.sha256, timeout, deployment=done.id, stopped=stopped)
        _confirm_with_rasa(settings, done.model)
    except (RolloutFailed, OSError) as exc:
        restored = models.restore(factory, done.id, done.actor, f"没有全部换上：{exc}")
        log(f"model: {exc}; went back to v{restored.model.id}")
        try:
            wait_rollout(factory, restored.model.sha256, timeout)
        except (RolloutFailed, NoWorkers) as again:
            log(f"model: going back did not reach every worker either: {again}")
        raise RolloutFailed(str(exc)) from exc
    log(f"model: every worker serves v{done.model.id} ({len(state.workers)} workers, "
        f"{time.monotonic() - started:.1f} s)")
    return state


def switch(factory: sessionmaker, settings: Settings, change: Callable[[], models.DeploymentView],
           timeout: float = ROLLOUT_TIMEOUT_S, log: Callable[[str], None] = print) -> models.DeploymentView:
    """Record a deploy or rollback, wait until every worker serves its model; undo it if they do not."""
    done = change()
    finish(factory, settings, done, timeout, log)
    return done


def _factory(settings: Settings) -> sessionmaker:
    from bot.store.db import make_engine, make_session_factory

    return make_session_factory(make_engine(settings.database_url))


def _print_list(factory: sessionmaker) -> None:
    current = models.deployed(factory)
    print("模型 / models:")
    for v in models.versions(factory):
        gate = {True: "对比通过", False: "对比未通过", None: "未对比"}[v.gate_passed]
        mark = "  ← 在用" if current and current.model.id == v.id else ""
        figures = ", ".join(f"{k.rsplit('/', 1)[-1]} {val:.3f}" for k, val in v.metrics.items()
                            if isinstance(val, float))
        print(f"  v{v.id}  {v.file}  数据 {v.data_hash}  {gate}{'（对比 v%d）' % v.gated_against if v.gated_against else ''}"
              f"  {figures}  {v.registered_by} {v.registered_at:%Y-%m-%d %H:%M}{mark}")
    print("上线记录 / deployments:")
    for d in models.history(factory, 20):
        undone = f"（{d.rolled_back_at:%m-%d %H:%M} 已回退）" if d.rolled_back_at else ""
        print(f"  {d.at:%Y-%m-%d %H:%M:%S}  {d.action:<8} v{d.model.id}  {d.actor}{undone}  {d.reason or ''}")
    if current:
        state = models.rollout(factory, current.model.sha256)
        print("Rasa worker:")
        for w in state.workers:
            print(f"  {w.worker}  {'在用' if w.sha256 == current.model.sha256 else '旧模型'} "
                  f"{(w.sha256 or '—')[:12]}  {w.seen_at:%H:%M:%S}")


def main(argv: Optional[List[str]], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot model", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("deploy", help="serve a model whose gate passed on every Rasa worker")
    d.add_argument("model", type=Path)
    d.add_argument("--as", dest="staff", required=True, help="the admin's staff key")
    d.add_argument("--reason", default=None)
    d.add_argument("--timeout", type=float, default=ROLLOUT_TIMEOUT_S)
    r = sub.add_parser("rollback", help="serve again the model served before the latest deploy")
    r.add_argument("--as", dest="staff", required=True, help="the admin's staff key")
    r.add_argument("--reason", default=None)
    r.add_argument("--timeout", type=float, default=ROLLOUT_TIMEOUT_S)
    sub.add_parser("list", help="model versions, deployments and what each Rasa worker serves")
    args = parser.parse_args(argv)
    factory = _factory(settings)
    if args.command == "list":
        _print_list(factory)
        return 0
    try:
        if args.command == "deploy":
            version = models.by_path(factory, args.model) if args.model.is_file() else None
            if version is None:
                print(f"model: {args.model} is not in the registry: gate it first (python -m bot model retrain, "
                      "or model gate)", file=sys.stderr)
                return 2
            switch(factory, settings, lambda: models.deploy(factory, version.id, staff_key=args.staff,
                                                            reason=args.reason), args.timeout)
        else:
            switch(factory, settings, lambda: models.rollback(factory, args.staff, args.reason), args.timeout)
    except HongguanjiaError as exc:
        print(f"model: {exc}", file=sys.stderr)
        return 1
    except (NoWorkers, Superseded) as exc:
        print(f"model: recorded; {exc}", file=sys.stderr)
        return 0
    except RolloutFailed as exc:
        print(f"model: {exc}", file=sys.stderr)
        return 1
    return 0
