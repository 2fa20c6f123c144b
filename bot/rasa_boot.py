"""Our corrections of Rasa 3.6's behaviour, installed when our Rasa server starts.

`make run` and the test/bench stack start Rasa as `python -m bot.rasa_boot run ...`: this module installs
the corrections below, then hands the unchanged command line to Rasa's own CLI (`rasa.__main__.main`),
so arguments, output and exit code are Rasa's.

Corrections (each names the Rasa code it replaces; review them when Rasa is upgraded, `install` refuses
a Rasa outside the series they were written for):

1. `RemoteAction._validate_action_result` (rasa/core/actions/action.py) calls `jsonschema.validate` on
   every action-server response, and `jsonschema.validate` checks the schema itself against its
   meta-schema each time before checking the response: about 17 ms of CPU a call on an idle machine,
   several times that under load, two or three calls a form turn. Here the validator is built (and the
   schema checked) once per response schema; a valid response costs only the response check. An invalid
   response is handed to Rasa's own method, which raises exactly what Rasa raises.
2. `EndpointConfig.request` (rasa/utils/endpoints.py) opens a new aiohttp session, and with it a new
   connection, for every action-server call. The action endpoint's `session()` now lends one session per
   event loop (Rasa's own `request` still does the call and its error handling), kept until the server
   stops (`rasa.core.run.close_resources`). Idle connections are dropped after 2 s, before the action
   server's Sanic drops them at 5 s, so a call does not go out on a connection the server is closing.
3. `RasaModel.load` (rasa/utils/tensorflow/models.py), which DIET and the ResponseSelector use, builds the
   model's variables by training it for one step (`fit`, which traces the whole training graph) and then
   overwrites them with the stored weights: about two thirds of the server's start-up. For a model loaded
   to predict (not to fine-tune), the stored weights are now restored as the one prediction Rasa already
   makes creates the variables; every variable the prediction uses must be found in the file (else
   Rasa's own load runs). Predictions are identical (tests/model/test_fast_load.py).
4. `_update_model_from_server` (rasa/core/agent.py), Rasa's model pull from a model server (here the console,
   bot/console/models.py), loads a new model on the event loop: the worker answers nothing for the seconds
   the load takes. Here the pull names the worker (`X-HG-Worker: host:pid`, so the registry knows what each
   worker serves) and the new model's processor is built in a thread while the old one keeps answering;
   the switch (processor, domain, fingerprint) then happens on the event loop between two messages. A
   conversation in progress continues: its state is in the tracker store, not in the model. A model that
   fails to load leaves the old one serving, as in Rasa.
5. `MessageProcessor._run_action` (rasa/core/processor.py) logs a failed custom-action call ("Bot will continue,
   but the actions events are lost") and goes on predicting: with the action server down the resident gets
   half an answer, and a form is left in whatever state the failed call found it. When a call to the action
   server fails (`RemoteAction.run` raises RasaException: refused, reset, timed out or a 5xx, from nginx or
   the server itself), the turn now ends there with `bot.errors.AssistantUnavailable`, before Rasa saves the
   tracker: the conversation stays as it was before the message, so nothing is half-written, and the same
   message sent again later goes on where it left off. Our channels answer it with messages.SYSTEM_BUSY.
   (Undoing the turn with `UserUtteranceReverted` instead does not work inside a form: Rasa's collapse of a
   form's happy path removes the user message the revert looks for.) A rejection (400) is Rasa's own business
   and is left alone.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Text, Tuple

if TYPE_CHECKING:
    import aiohttp
    from jsonschema.protocols import Validator
    from rasa.core.actions.action import RemoteAction
    from rasa.utils.endpoints import EndpointConfig

log = logging.getLogger(__name__)

RASA_SERIES = "3.6."  # the Rasa releases these corrections were written against
IDLE_CONNECTION_S = 2.0  # below Sanic's KEEP_ALIVE_TIMEOUT (5 s) on the action server

_rasa_validate_action_result: Optional[Callable[["RemoteAction", Dict[Text, Any]], bool]] = None
_rasa_remote_action_init: Optional[Callable[..., None]] = None
_rasa_close_resources: Optional[Callable[..., Any]] = None
_rasa_model_load: Optional[Callable[..., Any]] = None
_rasa_update_model: Optional[Callable[..., Any]] = None
_rasa_remote_action_run: Optional[Callable[..., Any]] = None
_rasa_run_action: Optional[Callable[..., Any]] = None
# The custom action whose call to the action server failed in this turn (correction 5).
_failed_action: "contextvars.ContextVar[Optional[str]]" = contextvars.ContextVar("hg_failed_action", default=None)
WORKER_HEADER = "X-HG-Worker"  # bot/console/models.py reads it
# (endpoint id, loop id) -> the endpoint and loop themselves (so neither id is reused) and their session
_sessions: Dict[Tuple[int, int], Tuple["EndpointConfig", asyncio.AbstractEventLoop, "aiohttp.ClientSession"]] = {}


@functools.lru_cache(maxsize=None)
def response_validator(action_class: type) -> "Validator":
    """The validator for `action_class`'s response schema; the schema is checked against its meta-schema once."""
    from jsonschema.validators import validator_for

    schema = action_class.action_response_format_spec()
    cls = validator_for(schema)  # as jsonschema.validate picks it: by `$schema`, else the newest draft
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: "RemoteAction", result: Dict[Text, Any]) -> bool:
    """`RemoteAction._validate_action_result` without re-checking the schema on every call."""
    from jsonschema.exceptions import best_match

    if best_match(response_validator(type(self)).iter_errors(result)) is None:
        return True
    assert _rasa_validate_action_result is not None  # installed together with this function
    return _rasa_validate_action_result(self, result)  # raises Rasa's ValidationError with Rasa's message


def action_session(endpoint: "EndpointConfig") -> "aiohttp.ClientSession":
    """The one session for calls to `endpoint` on the running event loop, configured as Rasa configures its own."""
    import aiohttp
    from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT

    loop = asyncio.get_running_loop()
    key = (id(endpoint), id(loop))
    held = _sessions.get(key)
    if held is None or held[2].closed:
        auth = (aiohttp.BasicAuth(endpoint.basic_auth["username"], endpoint.basic_auth["password"])
                if endpoint.basic_auth else None)
        session = aiohttp.ClientSession(
            headers=endpoint.headers, auth=auth, timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=IDLE_CONNECTION_S))
        held = _sessions[key] = (endpoint, loop, session)
    return held[2]


class _LentSession:
    """What the action endpoint's `session()` returns: `async with` yields the shared session and leaves it open."""

    def __init__(self, endpoint: "EndpointConfig") -> None:
        self.endpoint = endpoint

    async def __aenter__(self) -> "aiohttp.ClientSession":
        return action_session(self.endpoint)

    async def __aexit__(self, *exc_info: object) -> None:
        return None


def lend_sessions(endpoint: Optional["EndpointConfig"]) -> None:
    """Make `endpoint.request` use the shared session (once per endpoint object)."""
    if endpoint is not None and "session" not in vars(endpoint):
        endpoint.session = functools.partial(_LentSession, endpoint)  # type: ignore[method-assign]


def _remote_action_init(self: "RemoteAction", name: Text, action_endpoint: Optional["EndpointConfig"]) -> None:
    assert _rasa_remote_action_init is not None
    _rasa_remote_action_init(self, name, action_endpoint)
    lend_sessions(action_endpoint)


async def close_sessions() -> None:
    """Close the shared sessions opened on the running event loop."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _sessions if k[1] == loop_id]:
        await _sessions.pop(key)[2].close()


async def _close_resources(app: Any, loop: Any) -> None:
    await close_sessions()
    assert _rasa_close_resources is not None
    await _rasa_close_resources(app, loop)


def load_for_inference(cls: type, model_file_name: Text, model_data_example: Any, predict_data_example: Any = None,
                       finetune_mode: bool = False, *args: Any, **kwargs: Any) -> Any:
    """`RasaModel.load` without the training step when the model is loaded to predict."""
    assert _rasa_model_load is not None  # installed together with this function
    if finetune_mode or not predict_data_example:
        return _rasa_model_load(cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
                                *args, **kwargs)
    import tensorflow as tf
    from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY

    config = kwargs.get("config", {})
    model = cls(*args, **kwargs)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
                  run_eagerly=config.get(RUN_EAGERLY))
    restore = model.load_weights(model_file_name)  # deferred: each variable is restored as it is created
    model.run_inference(predict_data_example)      # Rasa makes this prediction anyway, to trace the graph
    try:
        restore.assert_existing_objects_matched()
    except AssertionError as exc:
        log.warning("fast model load found variables missing from %s (%s); loading it Rasa's way",
                    model_file_name, exc)
        return _rasa_model_load(cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
                                *args, **kwargs)
    restore.expect_partial()  # the optimizer's state is in the file too; predicting does not need it
    return model


def worker_name() -> str:
    """This Rasa worker, as the model registry knows it."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


async def load_beside(agent: Any, model_path: Text, fingerprint: Text) -> None:
    """Build the processor for `model_path` in a thread, then switch `agent` to it on the event loop
    (what `Agent.load_model` does, without blocking the loop while the model loads)."""
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.core.processor import MessageProcessor

    processor = await asyncio.get_running_loop().run_in_executor(None, functools.partial(
        MessageProcessor, model_path=model_path, tracker_store=agent.tracker_store, lock_store=agent.lock_store,
        action_endpoint=agent.action_endpoint, generator=agent.nlg, http_interpreter=agent.http_interpreter))
    agent.processor = processor
    agent.domain = processor.domain
    agent._set_fingerprint(fingerprint)
    agent.tracker_store.domain = agent.domain
    if isinstance(agent.nlg, TemplatedNaturalLanguageGenerator):
        agent.nlg.responses = agent.domain.responses if agent.domain else {}
    log.info("now serving model %s (%s)", processor.model_filename, fingerprint[:12])


async def update_model_from_server(model_server: "EndpointConfig", agent: Any) -> None:
    """Rasa's `_update_model_from_server`, with this worker named in the pull and the new model loaded beside
    the old one (see correction 4)."""
    import aiohttp
    import rasa.core.agent as rasa_agent
    from rasa.utils.common import TempDirectoryPath, get_temp_dir_name
    from rasa.nlu.utils import is_url

    if not is_url(model_server.url):
        raise aiohttp.InvalidURL(model_server.url)
    model_server.headers = {**(model_server.headers or {}), WORKER_HEADER: worker_name()}
    with TempDirectoryPath(get_temp_dir_name()) as temporary_directory:
        try:
            fingerprint = await rasa_agent._pull_model_and_fingerprint(model_server, agent.fingerprint,
                                                                       temporary_directory)
            if fingerprint:
                await load_beside(agent, temporary_directory, fingerprint)
        except Exception:  # noqa: BLE001 - Rasa's own behaviour: keep serving the model that is loaded
            log.exception("Failed to update model. The previous model will stay loaded instead.")


async def remote_action_run(self: "RemoteAction", output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> Any:
    """Rasa's call to the action server; a failed call is noted for `run_action` before Rasa's error goes on."""
    from rasa.core.actions.action import ActionExecutionRejection
    from rasa.shared.exceptions import RasaException

    try:
        return await _rasa_remote_action_run(self, output_channel, nlg, tracker, domain)
    except ActionExecutionRejection:
        raise
    except RasaException:
        _failed_action.set(self.name())
        raise


async def run_action(self: Any, action: Any, tracker: Any, output_channel: Any, nlg: Any, prediction: Any) -> bool:
    """Rasa's `_run_action`; when the action server could not be reached, the turn ends with AssistantUnavailable
    before the tracker is saved (`MessageProcessor.handle_message` saves it only after the turn)."""
    from bot.errors import AssistantUnavailable

    token = _failed_action.set(None)
    try:
        more = await _rasa_run_action(self, action, tracker, output_channel, nlg, prediction)
        failed = _failed_action.get()
    finally:
        _failed_action.reset(token)
    if failed is not None:
        log.error("action server unavailable (custom action %s failed); the turn of %s is dropped, the resident is "
                  "told the system is busy", failed, tracker.sender_id)
        raise AssistantUnavailable(f"custom action {failed} could not reach the action server")
    return more


def installed() -> bool:
    """True once `install` has put the corrections in place in this process."""
    from rasa.core.actions.action import RemoteAction

    from rasa.utils.tensorflow.models import RasaModel

    import rasa.core.agent as rasa_agent

    from rasa.core.processor import MessageProcessor

    return RemoteAction._validate_action_result is validate_action_result and \
        RemoteAction.__init__ is _remote_action_init and RasaModel.load.__func__ is load_for_inference and \
        rasa_agent._update_model_from_server is update_model_from_server and \
        RemoteAction.run is remote_action_run and MessageProcessor._run_action is run_action


def install() -> None:
    """Put every correction in place (idempotent); refuses a Rasa release it was not written for."""
    global _rasa_validate_action_result, _rasa_remote_action_init, _rasa_close_resources, _rasa_model_load
    global _rasa_update_model, _rasa_remote_action_run, _rasa_run_action
    import rasa
    import rasa.core.agent as rasa_agent
    import rasa.core.run
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.utils.tensorflow.models import RasaModel

    if not rasa.__version__.startswith(RASA_SERIES):
        raise RuntimeError(f"bot/rasa_boot.py corrects Rasa {RASA_SERIES}x, this is Rasa {rasa.__version__}: "
                           "check each correction against the new release, then update RASA_SERIES")
    if installed():
        return
    _rasa_validate_action_result = RemoteAction._validate_action_result
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
    _rasa_remote_action_init = RemoteAction.__init__
    RemoteAction.__init__ = _remote_action_init  # type: ignore[method-assign]
    # serve_application registers `close_resources` by its module-level name when the server starts.
    _rasa_close_resources = rasa.core.run.close_resources
    rasa.core.run.close_resources = _close_resources
    _rasa_model_load = RasaModel.load.__func__
    RasaModel.load = classmethod(load_for_inference)  # type: ignore[method-assign,assignment]
    # load_from_server and the pulling job look the function up by its module-level name when they run.
    _rasa_update_model = rasa_agent._update_model_from_server
    rasa_agent._update_model_from_server = update_model_from_server
    if RemoteAction.run is not remote_action_run:
        _rasa_remote_action_run = RemoteAction.run
        RemoteAction.run = remote_action_run  # type: ignore[method-assign]
    if MessageProcessor._run_action is not run_action:
        _rasa_run_action = MessageProcessor._run_action
        MessageProcessor._run_action = run_action  # type: ignore[method-assign]


def main() -> None:
    """Install the corrections, then run Rasa's CLI on this process's command line."""
    install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
