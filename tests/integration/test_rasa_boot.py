"""Our corrections of Rasa (bot/rasa_boot.py): a turn's cost in schema checks, Rasa's errors kept, the entry point."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Dict, Iterator, List

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json as json_response

from bot import rasa_boot
from bot.config import PROJECT_ROOT
from tests.helpers import serving

# What the action server answers for a form turn: slots validated, the next slot requested, a question asked.
FORM_TURN_REPLY = {
    "events": [
        {"event": "slot", "timestamp": None, "name": "address", "value": "吉利花园3号楼2单元501室"},
        {"event": "slot", "timestamp": None, "name": "phone", "value": "13812345678"},
        {"event": "slot", "timestamp": None, "name": "requested_slot", "value": "contact_name"},
    ],
    "responses": [{"text": "请问怎么称呼您？", "buttons": [], "elements": [], "custom": {}, "image": None,
                   "attachment": None}],
}
BROKEN_REPLY = {"events": [{"event": "slot", "name": "phone", "value": "13812345678", "timestamp": "now"}]}

DRAFTS = [jsonschema.Draft3Validator, jsonschema.Draft4Validator, jsonschema.Draft6Validator,
          jsonschema.Draft7Validator, jsonschema.Draft201909Validator, jsonschema.Draft202012Validator]


@pytest.fixture
def corrections(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The corrections installed as our Rasa process installs them; Rasa's own method is back afterwards."""
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    monkeypatch.setattr(rasa_boot, "_rasa_validate_action_result", None)
    rasa_boot.response_validator.cache_clear()
    rasa_boot.install()
    yield
    rasa_boot.response_validator.cache_clear()


@pytest.fixture
def schema_checks(monkeypatch: pytest.MonkeyPatch) -> List[Dict[str, Any]]:
    """Every schema that any jsonschema draft checks against its meta-schema from now on."""
    checked: List[Dict[str, Any]] = []
    for draft in DRAFTS:
        def counting(cls: type, schema: Dict[str, Any], *args: Any, _check=draft.check_schema.__func__,
                     **kwargs: Any) -> None:
            checked.append(schema)
            _check(cls, schema, *args, **kwargs)

        monkeypatch.setattr(draft, "check_schema", classmethod(counting))
    return checked


def fake_action_server(calls: List[str]) -> Sanic:
    """An action server speaking the real wire format: a broken reply for `action_broken`, else a form turn."""
    app = Sanic(f"fake_actions_{len(Sanic._app_registry)}")

    @app.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        calls.append(request.json["next_action"])
        return json_response(BROKEN_REPLY if request.json["next_action"] == "action_broken" else FORM_TURN_REPLY)

    return app


async def _run(action_name: str, port: int, domain: Domain) -> List[Any]:
    action = RemoteAction(action_name, EndpointConfig(url=f"http://127.0.0.1:{port}/webhook"))
    tracker = DialogueStateTracker("resident-1", domain.slots)
    return await action.run(CollectingOutputChannel(), TemplatedNaturalLanguageGenerator(domain.responses), tracker,
                            domain)


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(PROJECT_ROOT / "domain.yml")


async def test_many_action_calls_check_the_response_schema_against_its_meta_schema_at_most_once(
        corrections: None, schema_checks: List[Dict[str, Any]], domain: Domain) -> None:
    calls: List[str] = []
    async with serving(fake_action_server(calls)) as port:
        for _ in range(12):
            events = await _run("validate_leak_form", port, domain)
            assert SlotSet("phone", "13812345678") in events
            assert [e.text for e in events if getattr(e, "text", None)] == ["请问怎么称呼您？"]
    assert len(calls) == 12
    assert len(schema_checks) <= 1
    # The spy sees the check that Rasa as shipped makes on every call.
    jsonschema.validate(FORM_TURN_REPLY, RemoteAction.action_response_format_spec())
    assert len(schema_checks) in (1, 2)


async def test_a_broken_action_reply_raises_what_rasa_raises(corrections: None, domain: Domain) -> None:
    calls: List[str] = []
    async with serving(fake_action_server(calls)) as port:
        with pytest.raises(jsonschema.ValidationError) as raised:
            await _run("action_broken", port, domain)
    assert rasa_boot._rasa_validate_action_result is not None
    with pytest.raises(jsonschema.ValidationError) as by_rasa:
        rasa_boot._rasa_validate_action_result(RemoteAction("action_broken", None), BROKEN_REPLY)
    assert type(raised.value) is type(by_rasa.value)
    assert raised.value.message == by_rasa.value.message
    assert "Failed to validate Action server response from API" in raised.value.message
    assert list(raised.value.absolute_path) == list(by_rasa.value.absolute_path)


def test_installing_twice_keeps_rasas_own_method_for_the_error_path(corrections: None) -> None:
    rasa_boot.install()
    assert rasa_boot.installed()
    assert rasa_boot._rasa_validate_action_result is not rasa_boot.validate_action_result


def test_the_entry_point_installs_the_corrections_before_handing_the_command_line_to_rasa(
        corrections: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import rasa.__main__

    seen: List[Any] = []
    monkeypatch.setattr(RemoteAction, "_validate_action_result", rasa_boot._rasa_validate_action_result)
    monkeypatch.setattr(sys, "argv", ["bot/rasa_boot.py", "run", "--enable-api", "--port", "5005"])
    monkeypatch.setattr(rasa.__main__, "main", lambda: seen.append((rasa_boot.installed(), list(sys.argv))))
    rasa_boot.main()
    assert seen == [(True, ["bot/rasa_boot.py", "run", "--enable-api", "--port", "5005"])]


def test_the_entry_point_runs_rasas_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "bot.rasa_boot", "--version"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Rasa Version" in done.stdout and "3.6." in done.stdout


def test_a_rasa_of_another_series_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import rasa

    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    with pytest.raises(RuntimeError, match="corrects Rasa 3.6"):
        rasa_boot.install()


def _started_commands(monkeypatch: pytest.MonkeyPatch) -> Dict[str, List[str]]:
    """Record what the supervisor is asked to start instead of starting it; nothing then answers."""
    from bot import runner

    started: Dict[str, List[str]] = {}
    monkeypatch.setattr(runner.Supervisor, "start", lambda self, name, cmd, env, log=None: started.update({name: cmd}))
    return started


def test_make_run_starts_rasa_through_the_entry_point(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from bot import runner
    from bot.config import Settings

    started = _started_commands(monkeypatch)
    monkeypatch.setattr(runner, "_wait_http", lambda url, timeout, procs: False)
    monkeypatch.setattr(runner.signal, "signal", lambda *args: None)
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'hg.db'}", "HG_VAR_DIR": str(tmp_path)})
    assert runner.run(settings, tmp_path / "model.tar.gz") == 1
    assert started["rasa"][:4] == [sys.executable, "-m", "bot.rasa_boot", "run"]
    assert started["rasa"][started["rasa"].index("--model") + 1] == str(tmp_path / "model.tar.gz")


def test_the_test_stack_starts_rasa_through_the_entry_point(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from bot.devtools import stack

    started = _started_commands(monkeypatch)
    monkeypatch.setattr(stack, "_wait_http", lambda url, timeout, procs: False)
    with pytest.raises(RuntimeError, match="stack did not start"):
        stack.start_stack(tmp_path / "model.tar.gz", tmp_path / "stack")
    assert started["rasa"][:4] == [sys.executable, "-m", "bot.rasa_boot", "run"]
