"""Hot swap on the running stack: an admin deploys a model and then rolls it back through the registry; every Rasa
worker switches, Rasa's authenticated /status names the new model, no request fails or waits more than 2 s
meanwhile, and a conversation that was in the middle of a form goes on where it was."""

from __future__ import annotations

import gzip
import shutil
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest
from sqlalchemy.orm import sessionmaker

from bot import deploy
from bot.devtools.stack import Stack
from bot.devtools.traffic import Traffic
from bot.services import models
from bot.store.db import make_engine, make_session_factory

pytestmark = pytest.mark.slow

SLOWEST_S = 2.0


def _second_copy(model: Path, folder: Path) -> Path:
    """The same model under other bytes (an empty gzip member appended): a new registry version whose
    predictions are known to be the same, so the shared stack's other tests are not affected."""
    target = folder / "hg-copy.tar.gz"
    shutil.copyfile(model, target)
    with open(target, "ab") as f:
        f.write(gzip.compress(b""))
    return target


def _status(stack: Stack) -> Dict[str, object]:
    return deploy.rasa_status(stack.settings)


def _texts(replies: List[Dict[str, object]]) -> str:
    return "\n".join(str(r.get("text") or "") for r in replies)


def test_deploy_and_rollback_swap_every_worker_without_disturbing_a_conversation(stack: Stack, trained_model,
                                                                                   tmp_path) -> None:
    factory: sessionmaker = make_session_factory(make_engine(stack.settings.database_url))
    v1 = models.deployed(factory).model
    assert _status(stack)["model_file"] == v1.served_name
    v2 = models.register(factory, _second_copy(trained_model, tmp_path), actor="admin")
    models.record_gate(factory, v2.id, v1.id, {"passed": True, "files": [], "stories_failed": 0, "reasons": []})

    mid_form = _texts(stack.say("swap-resident", "洗衣机下水管堵了，阳台都是水"))
    assert "详细地址" in mid_form
    with Traffic(stack, prefix="swap-traffic") as traffic:
        time.sleep(2)
        done = deploy.switch(factory, stack.settings,
                             lambda: models.deploy(factory, v2.id, staff_key="admin", reason="换模型测试"),
                             timeout=120, log=lambda _m: None)
        time.sleep(2)
    assert done.model.id == v2.id
    state = models.rollout(factory, v2.sha256)
    assert state.done and len(state.workers) == stack.settings.rasa_workers, state
    assert {_status(stack)["model_file"] for _ in range(6)} == {v2.served_name}
    assert traffic.failures == [], traffic.failures
    assert len(traffic.latencies) >= 5 and max(traffic.latencies) <= SLOWEST_S, \
        (max(traffic.latencies), statistics.median(traffic.latencies))

    # the resident answers the question asked before the swap, and the form goes on from there
    after = _texts(stack.say("swap-resident", "吉利花园3号楼2单元501"))
    assert "详细地址" not in after and ("电话" in after or "手机" in after), after

    with Traffic(stack, prefix="swap-traffic") as traffic:
        back = deploy.switch(factory, stack.settings, lambda: models.rollback(factory, "admin", "测试回退"),
                             timeout=120, log=lambda _m: None)
    assert back.model.id == v1.id and back.action == "rollback"
    assert models.rollout(factory, v1.sha256).done
    assert {_status(stack)["model_file"] for _ in range(6)} == {v1.served_name}
    assert traffic.failures == [] and max(traffic.latencies) <= SLOWEST_S, (traffic.failures, traffic.latencies)
    reply = urllib.request.urlopen(f"{stack.settings.rasa_url}/", timeout=5).read()  # noqa: S310
    assert reply
