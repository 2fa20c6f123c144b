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
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Text

if TYPE_CHECKING:
    from jsonschema.protocols import Validator
    from rasa.core.actions.action import RemoteAction

RASA_SERIES = "3.6."  # the Rasa releases these corrections were written against

_rasa_validate_action_result: Optional[Callable[["RemoteAction", Dict[Text, Any]], bool]] = None


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


def installed() -> bool:
    """True once `install` has put the corrections in place in this process."""
    from rasa.core.actions.action import RemoteAction

    return RemoteAction._validate_action_result is validate_action_result


def install() -> None:
    """Put every correction in place (idempotent); refuses a Rasa release it was not written for."""
    global _rasa_validate_action_result
    import rasa
    from rasa.core.actions.action import RemoteAction

    if not rasa.__version__.startswith(RASA_SERIES):
        raise RuntimeError(f"bot/rasa_boot.py corrects Rasa {RASA_SERIES}x, this is Rasa {rasa.__version__}: "
                           "check each correction against the new release, then update RASA_SERIES")
    if installed():
        return
    _rasa_validate_action_result = RemoteAction._validate_action_result
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]


def main() -> None:
    """Install the corrections, then run Rasa's CLI on this process's command line."""
    install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
