"""The formal held-out file (tests/nlu/heldout_formal.yml): big enough, valid for the domain, apart from training."""

from __future__ import annotations

import re
from collections import Counter
from itertools import combinations

import yaml

from tests.nlu_kit import FORMAL_FILE, TRAINING_NLU, domain, form_opening_intents, nlu_examples, norm, ticket_forms

MIN_TOTAL = 150
MIN_PER_INTENT = {"report_leak": 40, "request_repair": 40, "out_of_scope": 40, "check_ticket": 20}
NEAR_COPY_JACCARD = 0.6  # character-bigram overlap above which two messages are one message with names swapped

FORMAL = nlu_examples(FORMAL_FILE)
MESSAGES = [(intent, text) for intent, texts in FORMAL.items() for text in texts]


def _bigrams(text: str) -> set:
    t = norm(re.sub(r"\d+", "0", text))
    return {t[i:i + 2] for i in range(len(t) - 1)}


def test_formal_file_is_rasa_nlu_yaml_version_3_1() -> None:
    data = yaml.safe_load(FORMAL_FILE.read_text(encoding="utf-8"))
    assert data["version"] == "3.1"
    assert all(set(block) == {"intent", "examples"} for block in data["nlu"])


def test_formal_file_has_enough_messages_overall_and_per_intent() -> None:
    counts = {intent: len(texts) for intent, texts in FORMAL.items()}
    assert len(MESSAGES) >= MIN_TOTAL, counts
    short = {i: (counts.get(i, 0), n) for i, n in MIN_PER_INTENT.items() if counts.get(i, 0) < n}
    assert short == {}


def test_every_intent_of_the_formal_file_is_in_the_domain() -> None:
    assert set(FORMAL) - set(domain()["intents"]) == set()


def test_formal_file_has_no_duplicate_messages() -> None:
    counts = Counter(norm(text) for _, text in MESSAGES)
    assert [text for _, text in MESSAGES if counts[norm(text)] > 1] == []


def test_formal_file_has_no_near_copies() -> None:
    grams = [(text, _bigrams(text)) for _, text in MESSAGES]
    near = [(a, b) for (a, ga), (b, gb) in combinations(grams, 2)
            if len(ga & gb) / len(ga | gb) > NEAR_COPY_JACCARD]
    assert near == []


def test_no_formal_message_appears_in_the_training_data() -> None:
    training = {norm(text) for texts in nlu_examples(TRAINING_NLU).values() for text in texts}
    assert len(training) > 0
    in_training = [text for _, text in MESSAGES if norm(text) in training]
    assert in_training == []


def test_ticket_forms_and_the_intents_that_open_them_are_found_in_the_stories() -> None:
    forms = ticket_forms()
    assert {"leak_form", "repair_form", "help_form"} <= forms
    assert "volunteer_form" not in forms  # it ends in action_submit_volunteer, not a ticket
    opening = form_opening_intents()
    assert {"report_leak", "request_repair", "request_help"} <= opening
    assert opening.isdisjoint({"out_of_scope", "check_ticket", "volunteer_signup", "ask_clinic", "inform"})
