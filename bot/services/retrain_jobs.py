"""Retrain jobs started from the console: `python -m bot model retrain` in a process of its own (never inside the
console or the Rasa server), one at a time on a machine.

The job's state is files under `<var>/retrain/`: `job.json` (who started it, when, its pid), `<id>.jsonl` (the
steps bot/retrain.py reports), `<id>.log` (Rasa's output). Starting is decided under a file lock, so two admins
clicking at once start one job; the second is told one is running.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from bot.config import PROJECT_ROOT, Settings, rasa_env
from bot.errors import InvalidState
from bot.services.scope import model_manager
from bot.store.db import unit_of_work
from bot.store.models import utcnow

STEP_LABELS = {"validating": "检查训练数据", "training": "训练新模型（几分钟）", "gating": "和在用的模型对比",
               "done": "完成"}


@dataclass
class Job:
    id: str
    started_by: str
    started_at: str
    pid: int
    running: bool
    steps: List[Dict[str, Any]] = field(default_factory=list)
    log_tail: str = ""  # the end of the job's output, shown when it ended without an outcome

    @property
    def outcome(self) -> Optional[Dict[str, Any]]:
        """The last step when it is `done` (version, passed, reasons)."""
        return self.steps[-1] if self.steps and self.steps[-1].get("step") == "done" else None

    def as_dict(self) -> Dict[str, Any]:
        return {"id": self.id, "started_by": self.started_by, "started_at": self.started_at, "running": self.running,
                "steps": [{**s, "label": STEP_LABELS.get(s.get("step"), s.get("step"))} for s in self.steps],
                "outcome": self.outcome, "failed": not self.running and self.outcome is None,
                "log_tail": self.log_tail if not self.running and self.outcome is None else ""}


def retrain_command(staff_key: str, progress: Path) -> List[str]:
    """The command a console retrain runs (bot/retrain.py)."""
    return [sys.executable, "-m", "bot", "model", "retrain", "--as", staff_key, "--progress", str(progress)]


def _dir(settings: Settings) -> Path:
    folder = settings.var_dir / "retrain"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs. A finished child stays a zombie until its parent reaps it, and the console
    worker that started the job may not be the one asking: a zombie counts as finished (and is reaped if ours)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    if state in ("Z", "X"):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


def current(settings: Settings) -> Optional[Job]:
    """The latest job (running or finished), if any."""
    state = _dir(settings) / "job.json"
    if not state.is_file():
        return None
    meta = json.loads(state.read_text(encoding="utf-8"))
    steps_file = _dir(settings) / f"{meta['id']}.jsonl"
    steps = [json.loads(line) for line in steps_file.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if steps_file.is_file() else []
    log = _dir(settings) / f"{meta['id']}.log"
    tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.is_file() else ""
    finished = bool(steps) and steps[-1].get("step") == "done"
    return Job(meta["id"], meta["started_by"], meta["started_at"], int(meta["pid"]),
               not finished and _alive(int(meta["pid"])), steps, log_tail=tail)


def start(settings: Settings, factory: Any, staff_key: str, now: Optional[dt.datetime] = None) -> Job:
    """Start a retrain as `staff_key` (an admin) unless one is running."""
    with unit_of_work(factory) as session:
        model_manager(session, staff_key)  # NotAllowed unless they manage the model
    folder = _dir(settings)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        running = current(settings)
        if running is not None and running.running:
            raise InvalidState(f"{running.started_by} 在 {running.started_at} 开始的训练还没结束")
        job_id = (now or utcnow()).strftime("%Y%m%d-%H%M%S")
        with open(folder / f"{job_id}.log", "ab") as log:
            proc = subprocess.Popen(
                retrain_command(staff_key, folder / f"{job_id}.jsonl"), cwd=PROJECT_ROOT, env=rasa_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        meta = {"id": job_id, "started_by": staff_key, "pid": proc.pid,
                "started_at": (now or utcnow()).strftime("%Y-%m-%d %H:%M")}
        tmp = folder / "job.json.tmp"
        tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        tmp.replace(folder / "job.json")
    job = current(settings)
    assert job is not None
    return job
