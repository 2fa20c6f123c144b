"""Reading NLU test files and the dialogue data: examples per intent, and which intents open a ticket form."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Set

import yaml

from bot import nlu_data
from bot.config import PROJECT_ROOT
from bot.nlu_data import norm  # noqa: F401  (re-exported for the tests)

FORMAL_FILE = PROJECT_ROOT / "tests" / "nlu" / "heldout_formal.yml"
TRAINING_NLU = PROJECT_ROOT / "data" / "nlu"
STORIES_DIR = PROJECT_ROOT / "data" / "stories"
DOMAIN_FILE = PROJECT_ROOT / "domain.yml"

# The action that turns a completed form into a ticket; a form whose completion runs it is a ticket form.
SUBMIT_TICKET_ACTION = "action_submit_ticket"

def nlu_examples(path: Path) -> Dict[str, List[str]]:
    """Example texts per intent of a Rasa NLU YAML file or folder, entity annotations removed."""
    return nlu_data.examples_by_intent(path)


def domain() -> Dict[str, Any]:
    """The parsed domain.yml."""
    return yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))


def _conversations(stories_dir: Path) -> Iterable[Dict[str, Any]]:
    for file in sorted(stories_dir.glob("*.yml")):
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        yield from data.get("rules", []) or []
        yield from data.get("stories", []) or []


def _initial_loop(conversation: Dict[str, Any]) -> Optional[str]:
    for step in conversation.get("condition", []) or []:
        if isinstance(step, dict) and "active_loop" in step:
            return step["active_loop"]
    return None


def ticket_forms(stories_dir: Path = STORIES_DIR) -> Set[str]:
    """Forms whose completion (the loop closing) is followed by the ticket-submitting action."""
    forms: Set[str] = set()
    for conversation in _conversations(stories_dir):
        active, closed = _initial_loop(conversation), None
        for step in conversation.get("steps", []) or []:
            if not isinstance(step, dict):
                continue
            if "active_loop" in step:
                closed = active if step["active_loop"] is None else None
                active = step["active_loop"]
            elif step.get("action") == SUBMIT_TICKET_ACTION and closed:
                forms.add(closed)
            elif "intent" in step:
                closed = None
    return forms


def form_opening_intents(stories_dir: Path = STORIES_DIR) -> Set[str]:
    """Intents that, said while no form runs, activate a ticket form in some rule or story."""
    forms = ticket_forms(stories_dir) & set(domain().get("forms", {}) or {})
    intents: Set[str] = set()
    for conversation in _conversations(stories_dir):
        active, pending = _initial_loop(conversation), None
        for step in conversation.get("steps", []) or []:
            if not isinstance(step, dict):
                continue
            if "intent" in step:
                pending = step["intent"] if active is None else None
            elif "active_loop" in step:
                if step["active_loop"] in forms and pending:
                    intents.add(pending)
                active, pending = step["active_loop"], None
    return intents
