"""The model registry: who may deploy what, rollbacks walk back through the deploys, a deploy that does not reach
every worker is undone, and the console serves the deployed model in Rasa's model-server protocol."""

from __future__ import annotations

import datetime as dt
import gzip
import tarfile
from pathlib import Path
from typing import AsyncIterator, Dict

import pytest
from sqlalchemy.orm import sessionmaker

from bot import deploy
from bot.config import Settings
from bot.errors import InvalidState, NotAllowed
from bot.services import models
from tests.console_kit import ServedConsole, serve_console
from tests.helpers import community_db

TOKEN = "test-rasa-token-0123"


def _model(folder: Path, name: str, content: str) -> Path:
    """A small tar.gz standing in for a model file (the registry only reads its bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    inner = folder / f"{name}.txt"
    inner.write_text(content, encoding="utf-8")
    path = folder / f"hg-{name}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(inner, arcname="metadata.json")
    return path


def _report(passed: bool, before: float = 0.95, after: float = 0.96) -> Dict[str, object]:
    return {"passed": passed, "reasons": [] if passed else ["tests/nlu/heldout.yml: 下降"], "stories_failed": 0,
            "files": [{"file": "tests/nlu/heldout.yml", "macro_f1_before": before, "macro_f1_after": after}]}


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker:
    return community_db(sqlite_url)


@pytest.fixture
def served(factory: sessionmaker, tmp_path: Path) -> Dict[str, models.ModelView]:
    """v1 served by the runner; v2 gated against it and passed; v3 gated against it and failed."""
    v1 = models.register(factory, _model(tmp_path / "m", "aaaa", "one"), actor=models.RUNNER)
    models.deploy(factory, v1.id, runner=True)
    v2 = models.register(factory, _model(tmp_path / "m", "bbbb", "two"), actor="admin")
    models.record_gate(factory, v2.id, v1.id, _report(True))
    v3 = models.register(factory, _model(tmp_path / "m", "cccc", "three"), actor="admin")
    models.record_gate(factory, v3.id, v1.id, _report(False, after=0.90))
    return {"v1": v1, "v2": models.get(factory, v2.id), "v3": models.get(factory, v3.id)}


def served_dir(served: Dict[str, models.ModelView]) -> Path:
    return Path(served["v1"].path).parent


def test_a_model_file_is_registered_once_with_its_data_fingerprint(factory, tmp_path) -> None:
    path = _model(tmp_path, "0123abcd", "x")
    first = models.register(factory, path, actor=models.RUNNER)
    again = models.register(factory, path, actor="admin")
    assert first == again and first.data_hash == "0123abcd" and first.sha256 == models.file_sha256(path)
    copy = tmp_path / "elsewhere" / path.name
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    path.unlink()
    moved = models.register(factory, copy, actor="admin")
    assert moved.id == first.id and moved.path == str(copy.resolve())


def test_an_admin_deploys_only_a_model_whose_gate_passed_against_the_model_in_use(factory, served) -> None:
    with pytest.raises(InvalidState, match="没有通过对比"):
        models.deploy(factory, served["v3"].id, staff_key="admin")
    with pytest.raises(NotAllowed):
        models.deploy(factory, served["v2"].id, staff_key="zhouming")  # a grid member
    with pytest.raises(InvalidState, match="已经在用"):
        models.deploy(factory, served["v1"].id, runner=True)
    done = models.deploy(factory, served["v2"].id, staff_key="admin", reason="加了评审过的例句")
    assert (done.action, done.actor, done.model.id) == ("deploy", "admin", served["v2"].id)
    assert models.deployed(factory).model.id == served["v2"].id
    # v3 was compared with v1, which is no longer in use: it must be compared again
    models.record_gate(factory, served["v3"].id, served["v1"].id, _report(True))
    with pytest.raises(InvalidState, match="请重新对比"):
        models.deploy(factory, served["v3"].id, staff_key="admin")
    # once an admin deployed, the runner deploys nothing, not even a model never seen (the admin's choice stands)
    with pytest.raises(InvalidState, match="an admin deployed"):
        models.deploy(factory, served["v1"].id, runner=True)
    fresh = models.register(factory, _model(served_dir(served), "eeee", "five"), actor=models.RUNNER)
    with pytest.raises(InvalidState, match="an admin deployed"):
        models.deploy(factory, fresh.id, runner=True)


def test_the_runner_serves_a_new_model_of_changed_data_but_never_one_served_before(factory, tmp_path) -> None:
    v1 = models.register(factory, _model(tmp_path, "aaaa", "one"), actor=models.RUNNER)
    models.deploy(factory, v1.id, runner=True)
    v2 = models.register(factory, _model(tmp_path, "bbbb", "two"), actor=models.RUNNER)
    assert models.deploy(factory, v2.id, runner=True).model.id == v2.id
    with pytest.raises(InvalidState, match="never deployed"):
        models.deploy(factory, v1.id, runner=True)


def test_rollbacks_walk_back_through_the_deploys_and_stop_at_the_first(factory, served, tmp_path) -> None:
    models.deploy(factory, served["v2"].id, staff_key="admin")
    v4 = models.register(factory, _model(tmp_path / "m", "dddd", "four"), actor="admin")
    models.record_gate(factory, v4.id, served["v2"].id, _report(True))
    models.deploy(factory, v4.id, staff_key="admin")
    back = models.rollback(factory, "admin", "新模型把问候当成了报修")
    assert (back.action, back.model.id, back.reason) == ("rollback", served["v2"].id, "新模型把问候当成了报修")
    assert models.rollback(factory, "admin").model.id == served["v1"].id
    with pytest.raises(InvalidState, match="无法回退"):
        models.rollback(factory, "admin")
    with pytest.raises(NotAllowed):
        models.rollback(factory, "wuxia")
    actions = [(d.action, d.model.id, d.rolled_back_at is not None) for d in models.history(factory)]
    assert actions == [("rollback", 1, False), ("rollback", 2, False), ("deploy", v4.id, True), ("deploy", 2, True),
                       ("deploy", 1, False)]


def test_rollout_counts_live_workers_and_those_still_loading(factory, served) -> None:
    now = dt.datetime(2026, 12, 3, 12, 0, 0)
    v1, v2 = served["v1"].sha256, served["v2"].sha256
    assert not models.rollout(factory, v1, now).done  # no worker: nothing serves it
    models.seen(factory, "vm:1", v1, now)
    models.seen(factory, "vm:2", v1, now)
    assert models.rollout(factory, v1, now).done
    models.seen(factory, "vm:1", v1, now, fetching=v2)  # vm:1 downloaded v2 and loads it
    models.seen(factory, "vm:2", v2, now)
    later = now + dt.timedelta(seconds=60)  # vm:1 has been silent while loading: still counted
    state = models.rollout(factory, v2, later)
    assert [w.worker for w in state.pending] == ["vm:1"] and not state.done
    models.seen(factory, "vm:1", v2, later)
    assert models.rollout(factory, v2, later).done  # vm:2 gone quiet for 60 s: no longer live, not waited for
    assert [w.worker for w in models.rollout(factory, v2, later).workers] == ["vm:1"]


def test_workers_take_a_new_model_one_at_a_time(factory, served) -> None:
    now = dt.datetime(2026, 12, 3, 12, 0, 0)
    v1, v2 = served["v1"].sha256, served["v2"].sha256
    assert not models.pull(factory, "vm:1", v1, v1, now) and not models.pull(factory, "vm:2", v1, v1, now)
    assert models.pull(factory, "vm:1", v1, v2, now)                # vm:1 loads v2
    assert not models.pull(factory, "vm:2", v1, v2, now)            # vm:2 goes on serving v1 meanwhile
    assert models.pull(factory, "vm:1", v1, v2, now + dt.timedelta(seconds=1))  # its own turn, asked again
    assert not models.pull(factory, "vm:1", v2, v2, now + dt.timedelta(seconds=30))  # vm:1 serves v2: done
    assert models.pull(factory, "vm:2", v1, v2, now + dt.timedelta(seconds=32))  # now vm:2's turn
    assert not models.pull(factory, "vm:1", v2, v2, now + dt.timedelta(seconds=33))
    assert [w.worker for w in models.rollout(factory, v2, now + dt.timedelta(seconds=33)).pending] == ["vm:2"]
    # workers that are starting serve nobody yet: they all load at once
    assert models.pull(factory, "vm:3", None, v2, now) and models.pull(factory, "vm:4", "a-rasa-uuid", v2, now)


def test_a_worker_that_dies_while_loading_holds_up_the_others_for_a_while_only(factory, served) -> None:
    now = dt.datetime(2026, 12, 3, 12, 0, 0)
    v1, v2 = served["v1"].sha256, served["v2"].sha256
    assert models.pull(factory, "vm:1", v1, v2, now)  # and never asks again
    assert not models.pull(factory, "vm:2", v1, v2, now + models.LOADING - dt.timedelta(seconds=1))
    assert models.pull(factory, "vm:2", v1, v2, now + models.LOADING + dt.timedelta(seconds=1))


def test_a_deploy_that_does_not_reach_every_worker_is_undone(factory, served, monkeypatch) -> None:
    settings = Settings.from_env({"DATABASE_URL": "sqlite://"})
    models.seen(factory, "vm:1", served["v1"].sha256)  # a worker that never takes v2
    with pytest.raises(deploy.RolloutFailed, match="vm:1"):
        deploy.switch(factory, settings, lambda: models.deploy(factory, served["v2"].id, staff_key="admin"),
                      timeout=1.0, log=lambda _m: None)
    current = models.deployed(factory)
    assert (current.action, current.model.id) == ("restore", served["v1"].id)
    assert "没有全部换上" in (current.reason or "")
    assert models.history(factory)[1].rolled_back_at is not None


@pytest.fixture
async def console(factory: sessionmaker, tmp_path: Path, clock) -> AsyncIterator[ServedConsole]:
    settings = Settings.from_env({"DATABASE_URL": "sqlite://", "HG_VAR_DIR": str(tmp_path), "HG_RASA_TOKEN": TOKEN,
                                  "HG_CONSOLE_SECRET": "test-console-secret-0123456789"})
    async with serve_console(settings, factory, clock) as served:
        yield served


async def test_the_console_serves_the_deployed_model_in_rasas_model_server_protocol(console, factory,
                                                                                     tmp_path) -> None:
    browser = console.browser()
    worker = {"X-HG-Worker": "vm:4242"}
    assert (await browser.get("/models/deployed", headers=worker)).status == 401
    assert (await browser.get("/models/deployed?token=wrong", headers=worker)).status == 401
    assert (await browser.get(f"/models/deployed?token={TOKEN}", headers=worker)).status == 404  # none yet
    v1 = models.register(factory, _model(tmp_path / "m", "aaaa", "one"), actor=models.RUNNER)
    models.deploy(factory, v1.id, runner=True)
    first = await console.http.get(f"{console.url}/models/deployed?token={TOKEN}",
                                   headers={**worker, "If-None-Match": "some-uuid"})
    body = await first.read()
    assert first.status == 200 and first.headers["ETag"] == v1.sha256
    assert first.headers["filename"] == f"v{v1.id}-hg-aaaa.tar.gz"
    assert body == Path(v1.path).read_bytes() and gzip.decompress(body)
    state = models.rollout(factory, v1.sha256)
    assert [(w.worker, w.sha256, w.fetching) for w in state.workers] == [("vm:4242", "some-uuid", v1.sha256)]
    again = await browser.get(f"/models/deployed?token={TOKEN}", headers={**worker, "If-None-Match": v1.sha256})
    assert again.status == 304
    assert models.rollout(factory, v1.sha256).done
    # a second worker and a new model: one worker downloads it, the other waits its turn with a 304
    v2 = models.register(factory, _model(tmp_path / "m", "bbbb", "two"), actor=models.RUNNER)
    models.deploy(factory, v2.id, runner=True)
    other = {"X-HG-Worker": "vm:4343", "If-None-Match": v1.sha256}
    async with console.http.get(f"{console.url}/models/deployed?token={TOKEN}",
                                headers={**worker, "If-None-Match": v1.sha256}) as fetched:
        assert fetched.status == 200 and fetched.headers["ETag"] == v2.sha256
        assert await fetched.read() == Path(v2.path).read_bytes()
    waits = await browser.get(f"/models/deployed?token={TOKEN}", headers=other)
    assert waits.status == 304 and waits.headers["ETag"] == v1.sha256
    assert (await browser.get(f"/models/deployed?token={TOKEN}",
                              headers={**worker, "If-None-Match": v2.sha256})).status == 304  # loaded
    async with console.http.get(f"{console.url}/models/deployed?token={TOKEN}", headers=other) as turn:
        assert turn.status == 200 and turn.headers["ETag"] == v2.sha256
