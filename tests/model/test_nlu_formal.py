"""Served intents on formal, long messages (tests/nlu/heldout_formal.yml): leaks and repairs are recognised,
and out-of-scope requests do not open ticket forms.

The predictions are what the running assistant acts on: the model is loaded the way the server loads it
(bot/rasa_boot.py's corrections, then `Agent.load`) in a process of its own, and `parse_message` includes
the FallbackClassifier, so a message that falls to `nlu_fallback` is a miss for its intent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from sklearn.metrics import classification_report

from bot.config import PROJECT_ROOT
from bot.nlu_compare import parse_with_model
from tests.helpers import REPORTS
from tests.nlu_kit import FORMAL_FILE, form_opening_intents, nlu_examples

pytestmark = pytest.mark.slow

REPORT_FILE = REPORTS / "nlu_formal.json"
MIN_RECALL = {"report_leak": 0.90, "request_repair": 0.90}
MAX_OUT_OF_SCOPE_OPENING_FORM = 0.05

def _lines(misses: List[Dict[str, Any]]) -> str:
    return "\n".join(f"  {m['expected']} -> {m['predicted']} ({m['confidence']:.2f}): {m['text']}" for m in misses)


def test_formal_messages_served_leaks_and_repairs_recognised_out_of_scope_opens_no_form(trained_model: Path) -> None:
    cases: List[Tuple[str, str]] = [(intent, text) for intent, texts in nlu_examples(FORMAL_FILE).items()
                                    for text in texts]
    answers = parse_with_model(trained_model, [text for _, text in cases])
    expected = [intent for intent, _ in cases]
    predicted = [a["served"] for a in answers]
    labels = sorted(set(expected))
    report = classification_report(expected, predicted, labels=labels, output_dict=True, zero_division=0)
    per_intent = {i: {"precision": round(report[i]["precision"], 3), "recall": round(report[i]["recall"], 3),
                      "f1": round(report[i]["f1-score"], 3), "support": int(report[i]["support"])} for i in labels}
    macro_f1 = report["macro avg"]["f1-score"]
    accuracy = sum(e == p for e, p in zip(expected, predicted)) / len(cases)

    opening = form_opening_intents()
    oos = [a for (intent, _), a in zip(cases, answers) if intent == "out_of_scope"]
    oos_opening = sum(a["served"] in opening for a in oos) / len(oos)
    misses = [{"text": text, "expected": intent, "predicted": a["served"], "confidence": a["confidence"],
               "ranking": a["ranking"]} for (intent, text), a in zip(cases, answers) if a["served"] != intent]

    REPORT_FILE.parent.mkdir(parents=True, exist_ok=True)
    REPORT_FILE.write_text(json.dumps({
        "model": trained_model.name, "file": str(FORMAL_FILE.relative_to(PROJECT_ROOT)), "messages": len(cases),
        "accuracy": round(accuracy, 3), "macro_f1": round(macro_f1, 3), "per_intent": per_intent,
        "nlu_fallback": predicted.count("nlu_fallback"),
        "out_of_scope_opening_form": {"share": round(oos_opening, 3), "of": len(oos),
                                      "form_intents": sorted(opening)},
        "misses": misses,
    }, ensure_ascii=False, indent=2), encoding="utf-8")
    recalls = " ".join(f"{i} {per_intent[i]['recall']:.2f}" for i in MIN_RECALL)
    print(f"formal held-out: {len(cases)} messages, accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f}, "
          f"recall {recalls}, out-of-scope opening a form {oos_opening:.3f}, {len(misses)} misses "
          f"({predicted.count('nlu_fallback')} nlu_fallback); {REPORT_FILE.relative_to(PROJECT_ROOT)}")

    failures = []
    for intent, floor in MIN_RECALL.items():
        if report[intent]["recall"] < floor:
            failures.append(f"{intent} recall {report[intent]['recall']:.3f} < {floor}:\n"
                            + _lines([m for m in misses if m["expected"] == intent]))
    if oos_opening > MAX_OUT_OF_SCOPE_OPENING_FORM:
        failures.append(f"out-of-scope opening a form {oos_opening:.3f} > {MAX_OUT_OF_SCOPE_OPENING_FORM}:\n"
                        + _lines([m for m in misses if m["expected"] == "out_of_scope" and m["predicted"] in opening]))
    assert not failures, "\n".join(failures)
