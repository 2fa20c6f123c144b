"""The console's model page: an admin starts a retrain (its own process, one at a time) and follows it, deploys a
model whose comparison passed, is refused one that failed, and rolls back; other staff cannot."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import AsyncIterator, List

import pytest
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.errors import NotAllowed
from bot.services import models, retrain_jobs
from bot.services.community import load_community
from bot.store.db import unit_of_work
from tests.console_kit import DEMO_PASSWORD, ServedConsole, serve_console
from tests.helpers import community_db
from tests.integration.test_communities import LANXING
from tests.integration.test_model_registry import _model, _report

# Stands in for `python -m bot model retrain` (minutes of training): reports its steps the way bot/retrain.py does.
FAKE_RETRAIN = """
import json, sys, time
progress = sys.argv[1]
for step in ("validating", "training", "gating"):
    with open(progress, "a", encoding="utf-8") as f:
        f.write(json.dumps({"step": step, "elapsed_s": 0.1}) + "\\n")
    time.sleep(float(sys.argv[2]))
with open(progress, "a", encoding="utf-8") as f:
    f.write(json.dumps({"step": "done", "elapsed_s": 0.5, "version": 7, "passed": True, "reasons": []}) + "\\n")
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"DATABASE_URL": "sqlite://", "HG_VAR_DIR": str(tmp_path / "var"),
                              "HG_CONSOLE_SECRET": "test-console-secret-0123456789"})


@pytest.fixture
def factory(sqlite_url: str, tmp_path: Path) -> sessionmaker:
    f = community_db(sqlite_url)
    v1 = models.register(f, _model(tmp_path / "m", "aaaa", "one"), actor=models.RUNNER)
    models.deploy(f, v1.id, runner=True)
    v2 = models.register(f, _model(tmp_path / "m", "bbbb", "two"), actor="admin")
    report_dir = tmp_path / "reports" / "v2"
    report_dir.mkdir(parents=True)
    report = {**_report(True), "max_drop": 0.01, "confusion_matrix": None, "candidate": "hg-bbbb.tar.gz",
              "files": [{"file": "tests/nlu/heldout.yml", "macro_f1_before": 0.95, "macro_f1_after": 0.96,
                         "per_intent": {"greet": {"before": 0.8, "after": 0.9}},
                         "changed": [{"text": "早上好呀", "expected": "greet", "before": "nlu_fallback",
                                      "after": "greet"}]}]}
    (report_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    models.record_gate(f, v2.id, v1.id, report, report_dir)
    v3 = models.register(f, _model(tmp_path / "m", "cccc", "three"), actor="admin")
    models.record_gate(f, v3.id, v1.id, _report(False, after=0.90))
    return f


@pytest.fixture
async def console(settings: Settings, factory: sessionmaker, clock) -> AsyncIterator[ServedConsole]:
    async with serve_console(settings, factory, clock) as served:
        yield served


async def test_only_admins_see_the_model_page(console) -> None:
    member = await console.signed_in("zhouming")
    assert (await member.get("/admin/models")).status == 403
    assert (await member.post("/admin/models/rollback", {"csrf_token": await member.csrf()})).status == 403
    admin = await console.signed_in("admin")
    page = await admin.get("/admin/models")
    assert page.status == 200 and "在用：<strong id=\"deployed\">v1</strong>" in page.text
    assert 'action="/admin/models/2/deploy"' in page.text  # passed against v1
    assert 'action="/admin/models/3/deploy"' not in page.text  # failed
    assert '<script src="/static/models.js"></script>' in page.text
    script = await admin.get("/static/models.js")
    assert script.status == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert "data-state-url" in script.text


async def test_an_admin_deploys_a_passed_model_is_refused_a_failed_one_and_rolls_back(console, factory) -> None:
    admin = await console.signed_in("admin")
    csrf = await admin.csrf()
    refused = await admin.post("/admin/models/3/deploy", {"csrf_token": csrf})
    assert refused.status == 409 and "没有通过对比" in refused.text
    assert models.deployed(factory).model.id == 1
    done = await admin.post("/admin/models/2/deploy", {"csrf_token": csrf, "reason": "加了评审过的例句"})
    assert done.status == 303 and done.location == "/admin/models?done=deploy"
    current = models.deployed(factory)
    assert (current.model.id, current.actor, current.reason) == (2, "admin", "加了评审过的例句")
    state = (await admin.get("/admin/models/state")).json()
    assert state["deployed"]["version"] == 2 and state["rolled_out"] is False  # no Rasa worker took it yet
    report = await admin.get("/admin/models/2/report")
    assert report.status == 200 and "早上好呀" in report.text and "0.950 → 0.960" in report.text
    assert (await admin.get("/admin/models/3/report")).status == 404
    back = await admin.post("/admin/models/rollback", {"csrf_token": csrf, "reason": "测试回退"})
    assert back.status == 303
    assert (models.deployed(factory).model.id, models.deployed(factory).action) == (1, "rollback")
    again = await admin.post("/admin/models/rollback", {"csrf_token": csrf})
    assert again.status == 409 and "无法回退" in again.text


async def test_a_retrain_runs_in_its_own_process_once_at_a_time_and_reports_its_steps(console, settings,
                                                                                        monkeypatch) -> None:
    started: List[List[str]] = []

    def command(staff_key: str, progress: Path) -> List[str]:
        started.append([staff_key, str(progress)])
        return [sys.executable, "-c", FAKE_RETRAIN, str(progress), "0.4"]

    monkeypatch.setattr(retrain_jobs, "retrain_command", command)
    admin = await console.signed_in("admin")
    csrf = await admin.csrf()
    first = await admin.post("/admin/models/retrain", {"csrf_token": csrf})
    assert first.status == 303 and first.location == "/admin/models?done=retrain"
    second = await admin.post("/admin/models/retrain", {"csrf_token": csrf})
    assert second.status == 409 and "还没结束" in second.text
    assert len(started) == 1 and started[0][0] == "admin"
    deadline = time.monotonic() + 30
    while True:
        state = (await admin.get("/admin/models/state")).json()
        if not state["job"]["running"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    job = state["job"]
    assert not job["running"] and [s["step"] for s in job["steps"]] == ["validating", "training", "gating", "done"]
    assert job["outcome"] == {"step": "done", "elapsed_s": 0.5, "version": 7, "passed": True, "reasons": []}
    page = await admin.get("/admin/models")
    assert "新模型 v7：对比通过" in page.text
    assert len(started) == 1
    assert (await admin.post("/admin/models/retrain", {"csrf_token": csrf})).status == 303  # the next one may start


async def test_a_retrain_that_fails_shows_the_end_of_its_log(console, monkeypatch) -> None:
    broken = "import sys; print('retrain: the training data does not validate: domain.yml 第 3 行'); sys.exit(1)"
    monkeypatch.setattr(retrain_jobs, "retrain_command", lambda staff_key, progress: [sys.executable, "-c", broken])
    admin = await console.signed_in("admin")
    assert (await admin.post("/admin/models/retrain", {"csrf_token": await admin.csrf()})).status == 303
    deadline = time.monotonic() + 30
    while (await admin.get("/admin/models/state")).json()["job"]["running"] and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    job = (await admin.get("/admin/models/state")).json()["job"]
    assert job["failed"] is True and job["outcome"] is None and "does not validate" in job["log_tail"]
    page = await admin.get("/admin/models")
    assert "没有完成（见下方日志）" in page.text and "domain.yml 第 3 行" in page.text


def test_a_finished_job_whose_process_is_a_zombie_is_not_running(settings) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        if state == "Z":
            break
        time.sleep(0.05)
    assert state == "Z"  # finished, not reaped yet
    assert retrain_jobs._alive(proc.pid) is False
    assert retrain_jobs._alive(os.getpid()) is True


async def test_with_several_communities_only_the_street_office_changes_the_shared_model(console, factory,
                                                                                      settings) -> None:
    with unit_of_work(factory) as session:
        load_community(session, {**LANXING, "console": {"demo_password": DEMO_PASSWORD}}, dt.date.today())
    for key in ("admin", "lx-admin"):  # a community's admin: the page, without the buttons
        admin = await console.signed_in(key)
        page = await admin.get("/admin/models")
        assert page.status == 200 and 'id="street-only"' in page.text
        assert 'id="retrain"' not in page.text and 'id="rollback"' not in page.text
        assert 'action="/admin/models/2/deploy"' not in page.text
        csrf = await admin.csrf()
        for path in ("/admin/models/retrain", "/admin/models/2/deploy", "/admin/models/rollback"):
            refused = await admin.post(path, {"csrf_token": csrf})
            assert refused.status == 403 and "由街道管理员操作" in refused.text, path
    assert models.deployed(factory).model.id == 1 and retrain_jobs.current(settings) is None
    with pytest.raises(NotAllowed):
        models.deploy(factory, 2, staff_key="admin")  # the CLI's way in: the same rule
    street = await console.signed_in("street")
    page = await street.get("/admin/models")
    assert 'id="rollback"' in page.text and 'action="/admin/models/2/deploy"' in page.text
    done = await street.post("/admin/models/2/deploy", {"csrf_token": await street.csrf()})
    assert done.status == 303 and models.deployed(factory).model.id == 2
