"""The training data has the size and variety the issue asks for, and the held-out file stays held out."""

from __future__ import annotations

import re
from collections import Counter
from itertools import combinations

import pytest
import yaml

from bot.config import PROJECT_ROOT
from bot.nlu_data import examples_by_intent, norm

MIN_EXAMPLES = {intent: 60 for intent in (
    "report_leak", "request_repair", "ask_clinic", "volunteer_signup", "check_ticket", "request_help",
    "give_feedback", "human_handoff", "out_of_scope")}
OTHER_INTENTS = ("greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "cancel_ticket", "inform")
FAQ_SUBINTENTS = ("office_hours", "fire_safety", "medical_safety", "property_phone")
TRAIN = examples_by_intent(PROJECT_ROOT / "data" / "nlu")
HELD_OUT = examples_by_intent(PROJECT_ROOT / "tests" / "nlu" / "heldout.yml")


@pytest.mark.parametrize("intent", sorted(MIN_EXAMPLES))
def test_ticket_intents_have_at_least_60_examples(intent: str) -> None:
    assert len(TRAIN.get(intent, [])) >= MIN_EXAMPLES[intent]


@pytest.mark.parametrize("intent", OTHER_INTENTS)
def test_other_intents_have_at_least_20_examples(intent: str) -> None:
    assert len(TRAIN.get(intent, [])) >= 20


@pytest.mark.parametrize("sub", FAQ_SUBINTENTS)
def test_each_faq_subintent_has_at_least_12_examples(sub: str) -> None:
    assert len(TRAIN.get(f"faq/{sub}", [])) >= 12


def test_no_duplicate_training_examples_across_intents() -> None:
    counts = Counter(norm(text) for texts in TRAIN.values() for text in texts)
    assert [t for t, n in counts.items() if n > 1] == []


def _bigrams(text: str) -> set:
    t = norm(re.sub(r"\d+", "0", text))
    return {t[i:i + 2] for i in range(len(t) - 1)}


def test_no_near_duplicate_examples_within_an_intent() -> None:
    near = []
    for intent, texts in TRAIN.items():
        grams = [(t, _bigrams(t)) for t in texts]
        for (a, ga), (b, gb) in combinations(grams, 2):
            if ga and gb and len(ga & gb) / len(ga | gb) > 0.9:
                near.append((intent, a, b))
    assert near == []


def test_held_out_file_has_at_least_150_messages_none_from_training() -> None:
    held = [t for texts in HELD_OUT.values() for t in texts]
    assert len(held) >= 150
    training = {norm(t) for texts in TRAIN.values() for t in texts}
    assert [t for t in held if norm(t) in training] == []


def test_held_out_file_covers_every_intent_of_the_domain() -> None:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    intents = set(domain["intents"]) | {"faq"}
    covered = {i.split("/")[0] for i in HELD_OUT}
    assert intents <= covered
