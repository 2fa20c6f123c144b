"""The model registry (DESIGN.md story 9): which trained models exist, which one every Rasa worker is to serve, who
deployed it and when, and whether each worker has taken it.

- `register` records a model file once (by its digest) with the fingerprint of the data it was trained from;
  `record_gate` adds the gate's verdict and figures (bot/retrain.py).
- `deploy` makes a model the one to serve. An admin may deploy only a model whose gate passed against the model
  being served right now. The runner (`make run`) may deploy a model that was never deployed, as long as no admin
  has deployed or rolled back since: that is how the model of the repository's own data is served on a fresh
  machine and after a developer's data change, and why an admin's choice is never overridden by a restart.
- `rollback` undoes the latest deploy that was not undone yet, and serves the model that was served before it;
  repeated rollbacks walk further back. `restore` is the same for a deploy that did not reach every worker.
- Rasa workers fetch the deployed model from the console (Rasa's model-server protocol, bot/console/models.py)
  and say which model they serve each time they ask (`pull`, `seen`); `rollout` tells whether every live
  worker serves a given model.
- Workers take a new model one at a time (`pull`, the `model-load` lease): loading a model keeps a worker's CPU
  busy for tens of seconds, and while one worker loads, the others serve at full speed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import InvalidInput, InvalidState, NotAllowed, NotFound
from bot.services import leases
from bot.services.scope import model_manager
from bot.store.db import unit_of_work
from bot.store.models import ModelDeployment, ModelVersion, ModelWorker, utcnow

RUNNER = "make run"  # the actor recorded when the runner serves a model the registry had not seen
DEPLOY, ROLLBACK, RESTORE = "deploy", "rollback", "restore"
LIVE = dt.timedelta(seconds=10)  # a worker that asked this recently is running (it asks every 2 s)
LOADING = dt.timedelta(minutes=3)  # a worker that downloaded a model is loading it for at most this long
MODEL_LOAD = "model-load"  # the lease of the one worker that is loading a new model


@dataclass(frozen=True)
class ModelView:
    id: int
    file: str
    path: str
    sha256: str
    data_hash: str
    gate_passed: Optional[bool]
    metrics: Dict[str, Any]
    report: Optional[str]
    gated_against: Optional[int]
    registered_by: str
    registered_at: dt.datetime

    @property
    def label(self) -> str:
        return f"v{self.id}"

    @property
    def served_name(self) -> str:
        """The file name Rasa workers get it under, and so report in Rasa's GET /status (`model_file`)."""
        return f"v{self.id}-{self.file}"


@dataclass(frozen=True)
class DeploymentView:
    id: int
    model: ModelView
    action: str
    actor: str
    reason: Optional[str]
    at: dt.datetime
    rolled_back_at: Optional[dt.datetime]


@dataclass(frozen=True)
class WorkerView:
    worker: str
    sha256: Optional[str]
    fetching: Optional[str]
    seen_at: dt.datetime


@dataclass
class Rollout:
    """How far a model has reached: every live worker, and which of them serve it."""

    sha256: str
    workers: List[WorkerView] = field(default_factory=list)

    @property
    def pending(self) -> List[WorkerView]:
        return [w for w in self.workers if w.sha256 != self.sha256]

    @property
    def done(self) -> bool:
        return bool(self.workers) and not self.pending


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _model_view(row: ModelVersion) -> ModelView:
    return ModelView(id=row.id, file=row.file, path=row.path, sha256=row.sha256, data_hash=row.data_hash,
                     gate_passed=row.gate_passed, metrics=dict(row.metrics or {}), report=row.report,
                     gated_against=row.gated_against_id, registered_by=row.registered_by,
                     registered_at=row.registered_at)


def _deployment_view(row: ModelDeployment) -> DeploymentView:
    return DeploymentView(id=row.id, model=_model_view(row.model), action=row.action, actor=row.actor,
                          reason=row.reason, at=row.at, rolled_back_at=row.rolled_back_at)


def _data_hash(path: Path) -> str:
    """The training fingerprint in the file name the trainer gives a model (hg-<fingerprint>.tar.gz)."""
    from bot.training import MODEL_PREFIX

    name = path.name
    if name.startswith(MODEL_PREFIX) and name.endswith(".tar.gz"):
        return name[len(MODEL_PREFIX):-len(".tar.gz")]
    return ""


def register(factory: sessionmaker, path: Path, *, actor: str, data_hash: Optional[str] = None) -> ModelView:
    """The registry's entry for the model file at `path`, made on first sight (the same file is one entry)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise NotFound("no model file there", path=str(path))
    sha = file_sha256(path)
    for _attempt in range(2):
        try:
            with unit_of_work(factory) as session:
                row = session.query(ModelVersion).filter_by(sha256=sha).one_or_none()
                if row is None:
                    row = ModelVersion(file=path.name, path=str(path), sha256=sha,
                                       data_hash=data_hash or _data_hash(path), metrics={}, registered_by=actor,
                                       registered_at=utcnow())
                    session.add(row)
                elif not Path(row.path).is_file():
                    row.path = str(path)  # the same model, moved
                session.flush()
                return _model_view(row)
        except IntegrityError:  # registered at the same moment by another process: read theirs
            continue
    raise InvalidState("the model could not be registered", path=str(path))


def get(factory: sessionmaker, model_id: int) -> ModelView:
    with unit_of_work(factory) as session:
        row = session.get(ModelVersion, model_id)
        if row is None:
            raise NotFound("no such model version", model=model_id)
        return _model_view(row)


def by_path(factory: sessionmaker, path: Path) -> Optional[ModelView]:
    """The registry's entry for this file, if it has one."""
    sha = file_sha256(path)
    with unit_of_work(factory) as session:
        row = session.query(ModelVersion).filter_by(sha256=sha).one_or_none()
        return _model_view(row) if row else None


def record_gate(factory: sessionmaker, model_id: int, against_id: int, report: Dict[str, Any],
                report_dir: Optional[Path] = None) -> ModelView:
    """Keep the gate's verdict on `model_id` beside `against_id`, with its figures."""
    metrics: Dict[str, Any] = {f["file"]: f["macro_f1_after"] for f in report.get("files", [])}
    metrics["stories_failed"] = report.get("stories_failed")
    metrics["reasons"] = list(report.get("reasons") or [])
    with unit_of_work(factory) as session:
        row = session.get(ModelVersion, model_id)
        if row is None or session.get(ModelVersion, against_id) is None:
            raise NotFound("no such model version", model=model_id)
        row.gate_passed = bool(report.get("passed"))
        row.metrics = metrics
        row.gated_against_id = against_id
        row.report = str(report_dir) if report_dir else row.report
        session.flush()
        return _model_view(row)


def _current(session: Session) -> Optional[ModelDeployment]:
    return session.query(ModelDeployment).order_by(ModelDeployment.id.desc()).first()


def deployed(factory: sessionmaker) -> Optional[DeploymentView]:
    """The deployment in force (its model is the one every worker is to serve), or None."""
    with unit_of_work(factory) as session:
        row = _current(session)
        return _deployment_view(row) if row else None


def history(factory: sessionmaker, limit: int = 50) -> List[DeploymentView]:
    with unit_of_work(factory) as session:
        rows = session.query(ModelDeployment).order_by(ModelDeployment.id.desc()).limit(limit).all()
        return [_deployment_view(r) for r in rows]


def versions(factory: sessionmaker, limit: int = 50) -> List[ModelView]:
    with unit_of_work(factory) as session:
        rows = session.query(ModelVersion).order_by(ModelVersion.id.desc()).limit(limit).all()
        return [_model_view(r) for r in rows]


def _admin(session: Session, staff_key: str) -> str:
    model_manager(session, staff_key)  # NotAllowed unless they manage the model
    return staff_key


def may_manage(factory: sessionmaker, staff_key: str) -> bool:
    """Whether `staff_key` retrains, deploys and rolls back (scope.manages_models): the page offers the buttons."""
    with unit_of_work(factory) as session:
        try:
            model_manager(session, staff_key)
        except (NotAllowed, NotFound):
            return False
    return True


def _add(session: Session, model_id: int, action: str, actor: str, reason: Optional[str],
         now: dt.datetime, expected_current: Optional[int]) -> ModelDeployment:
    """A new deployment row, unless another one landed since the caller looked (`expected_current`)."""
    current = _current(session)
    if (current.id if current else None) != expected_current:
        raise InvalidState("someone else deployed or rolled back a model just now; look again")
    row = ModelDeployment(model_id=model_id, action=action, actor=actor, reason=reason, at=now)
    session.add(row)
    session.flush()
    return row


def deploy(factory: sessionmaker, model_id: int, *, staff_key: Optional[str] = None, runner: bool = False,
           reason: Optional[str] = None, now: Optional[dt.datetime] = None) -> DeploymentView:
    """Make `model_id` the model every worker serves; `staff_key` (an admin) or the runner decides it."""
    now = now or utcnow()
    if bool(staff_key) == runner:
        raise InvalidInput("a deploy is decided by an admin or by the runner", field="actor")
    with unit_of_work(factory) as session:
        actor = _admin(session, staff_key) if staff_key else RUNNER
        row = session.get(ModelVersion, model_id)
        if row is None:
            raise NotFound("no such model version", model=model_id)
        if not Path(row.path).is_file():
            raise InvalidState(f"模型文件不在了：{row.path}", model=model_id)
        current = _current(session)
        if current is not None and current.model_id == model_id:
            raise InvalidState(f"v{model_id} 已经在用了", model=model_id)
        if runner and current is not None:
            if current.actor != RUNNER:
                raise InvalidState("an admin deployed the model in use; the runner leaves it", model=model_id)
            if session.query(ModelDeployment).filter_by(model_id=model_id).count():
                raise InvalidState("the runner deploys only a model that was never deployed", model=model_id)
        elif current is not None:
            if row.gate_passed is not True:
                raise InvalidState(f"v{model_id} 没有通过对比（gate），不能上线", model=model_id)
            if row.gated_against_id != current.model_id:
                raise InvalidState(f"v{model_id} 是和 v{row.gated_against_id} 对比的，现在在用的是 "
                                   f"v{current.model_id}：请重新对比", model=model_id)
        added = _add(session, model_id, DEPLOY, actor, reason, now, current.id if current else None)
        return _deployment_view(added)


def _undo(factory: sessionmaker, action: str, actor: Optional[str], staff_key: Optional[str],
          reason: Optional[str], now: dt.datetime, only: Optional[int] = None) -> DeploymentView:
    with unit_of_work(factory) as session:
        who = _admin(session, staff_key) if staff_key else (actor or RUNNER)
        current = _current(session)
        live = (session.query(ModelDeployment).filter(ModelDeployment.action == DEPLOY,
                                                      ModelDeployment.rolled_back_at.is_(None))
                .order_by(ModelDeployment.id.desc()).all())
        if not live or current is None:
            raise InvalidState("没有可以回退的上线记录")
        undone = live[0]
        if only is not None and undone.id != only:
            raise InvalidState("that deploy is no longer the latest one")
        earlier = [d for d in live[1:] if d.id < undone.id]
        if not earlier:
            raise InvalidState(f"v{undone.model_id} 之前没有上线过别的模型，无法回退")
        target = earlier[0]
        if not Path(target.model.path).is_file():
            raise InvalidState(f"上一版模型文件不在了：{target.model.path}")
        changed = session.execute(
            update(ModelDeployment).where(ModelDeployment.id == undone.id, ModelDeployment.rolled_back_at.is_(None))
            .values(rolled_back_at=now).execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            raise InvalidState("someone else rolled back just now; look again")
        added = _add(session, target.model_id, action, who, reason, now, current.id)
        return _deployment_view(added)


def rollback(factory: sessionmaker, staff_key: str, reason: Optional[str] = None,
             now: Optional[dt.datetime] = None) -> DeploymentView:
    """Serve again the model served before the latest deploy that was not undone (an admin's decision)."""
    return _undo(factory, ROLLBACK, None, staff_key, reason, now or utcnow())


def restore(factory: sessionmaker, deployment_id: int, actor: str, reason: str,
            now: Optional[dt.datetime] = None) -> DeploymentView:
    """Undo deploy `deployment_id` that did not reach every worker (by whoever made it), if it is still the
    latest one."""
    return _undo(factory, RESTORE, actor, None, reason, now or utcnow(), only=deployment_id)


# --- what the workers serve -----------------------------------------------------------------------------------

def seen(factory: sessionmaker, worker: str, sha256: Optional[str], now: Optional[dt.datetime] = None,
         fetching: Optional[str] = None) -> None:
    """Worker `worker` asked for the deployed model while serving `sha256` (and is about to load `fetching`)."""
    now = now or utcnow()
    worker = worker[:120]
    values: Dict[str, Any] = {"sha256": sha256 or None, "seen_at": now}
    if fetching:
        values.update(fetching=fetching, fetched_at=now)
    elif sha256:
        values.update(fetching=None)
    for _attempt in range(2):
        try:
            with unit_of_work(factory) as session:
                changed = session.execute(update(ModelWorker).where(ModelWorker.worker == worker).values(**values)
                                          .execution_options(synchronize_session=False)).rowcount
                if not changed:
                    session.add(ModelWorker(worker=worker, **values))
            return
        except IntegrityError:  # its first request, twice at once: the other one made the row
            continue


def pull(factory: sessionmaker, worker: str, serving: Optional[str], deployed: str,
         now: Optional[dt.datetime] = None) -> bool:
    """Worker `worker`, serving `serving`, asks for the model `deployed`: True when it is to download and load it
    now, False when it keeps serving what it has (it serves `deployed` already, or another worker is loading one).

    The loading worker holds the `model-load` lease until it reports serving the deployed model, or for LOADING
    at most (a worker that died while loading does not hold up the others). A worker that serves no model of
    the registry is starting and serves nobody yet: it loads at once."""
    now = now or utcnow()
    worker = worker[:120]
    if serving == deployed:
        seen(factory, worker, serving, now)
        if leases.holder_of(factory, MODEL_LOAD, now) == worker:
            leases.release(factory, MODEL_LOAD, worker)
        return False
    if _registered(factory, serving) and not leases.hold(factory, MODEL_LOAD, worker, LOADING, now):
        seen(factory, worker, serving, now)
        return False
    seen(factory, worker, serving, now, fetching=deployed)
    return True


def _registered(factory: sessionmaker, sha256: Optional[str]) -> bool:
    if not sha256:
        return False
    with unit_of_work(factory) as session:
        return session.query(ModelVersion.id).filter_by(sha256=sha256).first() is not None


def rollout(factory: sessionmaker, sha256: str, now: Optional[dt.datetime] = None) -> Rollout:
    """Every live worker (asked lately, or still loading a model it fetched) and what it serves."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        rows = session.query(ModelWorker).order_by(ModelWorker.worker).all()
        live = [WorkerView(r.worker, r.sha256, r.fetching, r.seen_at) for r in rows
                if now - r.seen_at <= LIVE or (r.fetching and r.fetching != r.sha256 and r.fetched_at is not None
                                                and now - r.fetched_at <= LOADING)]
    return Rollout(sha256, live)
