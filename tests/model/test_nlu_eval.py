"""NLU on the held-out file: intent macro-F1 must stay at or above 0.90."""

from __future__ import annotations

import json

import pytest

from tests.helpers import REPORTS, run_rasa

pytestmark = pytest.mark.slow
MIN_MACRO_F1 = 0.90


def test_intent_macro_f1_on_held_out_messages(trained_model) -> None:
    out = REPORTS / "nlu"
    result = run_rasa(["test", "nlu", "--model", str(trained_model), "--nlu", "tests/nlu/heldout.yml",
                       "--out", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    assert (out / "intent_confusion_matrix.png").is_file()
    per_intent = {k: round(v["f1-score"], 3) for k, v in report.items() if isinstance(v, dict) and "support" in v
                  and k not in ("macro avg", "weighted avg", "micro avg")}
    macro = report["macro avg"]["f1-score"]
    print(f"intent macro-F1 {macro:.3f}; per intent: {json.dumps(per_intent, ensure_ascii=False)}")
    assert macro >= MIN_MACRO_F1, f"macro-F1 {macro:.3f} < {MIN_MACRO_F1}: {per_intent}"
