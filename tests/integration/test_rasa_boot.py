"""Our corrections of Rasa (bot/rasa_boot.py): a turn's cost in schema checks and connections, Rasa's errors kept,
the entry point."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from types import SimpleNamespace
from typing import Any, AsyncIterator, Dict, List, Tuple

import jsonschema
import pytest
import rasa.core.run
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig
from rasa.utils.tensorflow.models import RasaModel
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json as json_response

from bot import rasa_boot
from bot.config import PROJECT_ROOT
from tests.helpers import serving, undo_rasa_boot_after_test

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
async def corrections(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """The corrections installed as our Rasa process installs them; Rasa as shipped is back afterwards."""
    undo_rasa_boot_after_test(monkeypatch)
    rasa_boot.response_validator.cache_clear()
    rasa_boot.install()
    yield
    await rasa_boot.close_sessions()
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


def fake_action_server(calls: List[Tuple[str, int]]) -> Sanic:
    """An action server speaking the real wire format: a broken reply for `action_broken`, else a form turn.

    `calls` collects each call's action and the client's port (one port per connection).
    """
    app = Sanic(f"fake_actions_{len(Sanic._app_registry)}")

    @app.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        calls.append((request.json["next_action"], request.conn_info.client_port))
        return json_response(BROKEN_REPLY if request.json["next_action"] == "action_broken" else FORM_TURN_REPLY)

    return app


def _endpoint(port: int) -> EndpointConfig:
    return EndpointConfig(url=f"http://127.0.0.1:{port}/webhook")


async def _run(action_name: str, endpoint: EndpointConfig, domain: Domain) -> List[Any]:
    action = RemoteAction(action_name, endpoint)
    tracker = DialogueStateTracker("resident-1", domain.slots)
    return await action.run(CollectingOutputChannel(), TemplatedNaturalLanguageGenerator(domain.responses), tracker,
                            domain)


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(PROJECT_ROOT / "domain.yml")


async def test_many_action_calls_check_the_response_schema_against_its_meta_schema_at_most_once(
        corrections: None, schema_checks: List[Dict[str, Any]], domain: Domain) -> None:
    calls: List[Tuple[str, int]] = []
    async with serving(fake_action_server(calls)) as port:
        for _ in range(12):
            events = await _run("validate_leak_form", _endpoint(port), domain)
            assert SlotSet("phone", "13812345678") in events
            assert [e.text for e in events if getattr(e, "text", None)] == ["请问怎么称呼您？"]
    assert len(calls) == 12
    assert len(schema_checks) <= 1
    # The spy sees the check that Rasa as shipped makes on every call.
    jsonschema.validate(FORM_TURN_REPLY, RemoteAction.action_response_format_spec())
    assert len(schema_checks) in (1, 2)


async def test_a_broken_action_reply_raises_what_rasa_raises(corrections: None, domain: Domain) -> None:
    calls: List[Tuple[str, int]] = []
    async with serving(fake_action_server(calls)) as port:
        with pytest.raises(jsonschema.ValidationError) as raised:
            await _run("action_broken", _endpoint(port), domain)
    assert rasa_boot._rasa_validate_action_result is not None
    with pytest.raises(jsonschema.ValidationError) as by_rasa:
        rasa_boot._rasa_validate_action_result(RemoteAction("action_broken", None), BROKEN_REPLY)
    assert type(raised.value) is type(by_rasa.value)
    assert raised.value.message == by_rasa.value.message
    assert "Failed to validate Action server response from API" in raised.value.message
    assert list(raised.value.absolute_path) == list(by_rasa.value.absolute_path)


async def test_action_calls_share_one_connection_until_the_server_stops(corrections: None, domain: Domain) -> None:
    calls: List[Tuple[str, int]] = []
    endpoint = _endpoint(0)
    async with serving(fake_action_server(calls)) as port:
        endpoint.url = f"http://127.0.0.1:{port}/webhook"
        for name in ["validate_leak_form", "action_ask_phone", "validate_leak_form"] * 4:
            await _run(name, endpoint, domain)
        session = rasa_boot.action_session(endpoint)
        await rasa.core.run.close_resources(SimpleNamespace(ctx=SimpleNamespace()), None)
    assert len(calls) == 12
    assert len({client_port for _, client_port in calls}) == 1
    assert session.closed


async def test_a_connection_the_action_server_closed_is_not_used_again(corrections: None, domain: Domain) -> None:
    calls: List[Tuple[str, int]] = []
    app = fake_action_server(calls)
    app.config.KEEP_ALIVE_TIMEOUT = 0.5  # the action server drops idle connections (Sanic's default is 5 s)
    async with serving(app) as port:
        endpoint = _endpoint(port)
        await _run("validate_leak_form", endpoint, domain)
        await asyncio.sleep(1.0)
        await _run("validate_leak_form", endpoint, domain)
    assert len({client_port for _, client_port in calls}) == 2


async def test_an_action_server_that_does_not_answer_fails_the_call_as_rasa_does(corrections: None,
                                                                                  domain: Domain) -> None:
    with socket.socket() as unused:  # bound, not listening: connections to it are refused
        unused.bind(("127.0.0.1", 0))
        with pytest.raises(RasaException, match="Couldn't connect to the server"):
            await _run("validate_leak_form", _endpoint(unused.getsockname()[1]), domain)


async def test_installing_twice_keeps_rasas_own_code_to_hand_over_to(corrections: None) -> None:
    rasa_boot.install()
    assert rasa_boot.installed()
    assert rasa_boot._rasa_validate_action_result is not rasa_boot.validate_action_result
    assert rasa_boot._rasa_remote_action_init is not rasa_boot._remote_action_init
    assert rasa_boot._rasa_close_resources is not rasa_boot._close_resources
    assert rasa_boot._rasa_model_load is not rasa_boot.load_for_inference
    assert rasa_boot._rasa_remote_action_run is not rasa_boot.remote_action_run
    assert rasa_boot._rasa_run_action is not rasa_boot.run_action


async def test_the_entry_point_installs_the_corrections_before_handing_the_command_line_to_rasa(
        corrections: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import rasa.__main__

    seen: List[Any] = []
    monkeypatch.setattr(RemoteAction, "_validate_action_result", rasa_boot._rasa_validate_action_result)
    monkeypatch.setattr(RemoteAction, "__init__", rasa_boot._rasa_remote_action_init)
    monkeypatch.setattr(rasa.core.run, "close_resources", rasa_boot._rasa_close_resources)
    monkeypatch.setattr(RasaModel, "load", classmethod(rasa_boot._rasa_model_load))
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
    """Record what the supervisor is asked to start instead of starting it; what was started before Rasa
    answers (so Rasa is started), Rasa never does. No model is put in the registry."""
    from bot import runner
    from bot.devtools import stack

    started: Dict[str, List[str]] = {}
    monkeypatch.setattr(runner.Supervisor, "start",
                        lambda self, name, cmd, env, log=None, restart=False: started.update({name: cmd}))
    monkeypatch.setattr(runner, "serve_trained_model", lambda *args, **kwargs: None)
    for module in (runner, stack):
        monkeypatch.setattr(module, "_wait_http", lambda url, timeout, procs: "rasa" not in started)
    return started


def test_make_run_starts_rasa_through_the_entry_point(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from bot import runner
    from bot.config import Settings

    started = _started_commands(monkeypatch)
    monkeypatch.setattr(runner.signal, "signal", lambda *args: None)
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'hg.db'}", "HG_VAR_DIR": str(tmp_path)})
    assert runner.run(settings, tmp_path / "model.tar.gz") == 1
    assert started["rasa"][:4] == [sys.executable, "-m", "bot.rasa_boot", "run"]
    assert started["rasa"][started["rasa"].index("--model") + 1] == str(tmp_path / "model.tar.gz")


def test_the_test_stack_starts_rasa_through_the_entry_point(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from bot.devtools import stack

    started = _started_commands(monkeypatch)
    with pytest.raises(RuntimeError, match="stack did not start"):
        stack.start_stack(tmp_path / "model.tar.gz", tmp_path / "stack")
    assert started["rasa"][:4] == [sys.executable, "-m", "bot.rasa_boot", "run"]
