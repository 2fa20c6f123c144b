"""The gate on real models: the shipped model beside itself passes, with the report the console shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import retrain

pytestmark = pytest.mark.slow


def test_the_model_beside_itself_passes_the_gate_and_the_report_is_complete(trained_model: Path, tmp_path) -> None:
    report = retrain.gate(trained_model, trained_model, out_dir=tmp_path, log=lambda _m: None)
    assert report["passed"] is True and report["reasons"] == [] and report["stories_failed"] == 0
    files = {f["file"]: f for f in report["files"]}
    assert set(files) == {"tests/nlu/heldout.yml", "tests/nlu/heldout_formal.yml"}
    for f in files.values():
        assert f["macro_f1_before"] == f["macro_f1_after"] > 0.9 and f["changed"] == []
        assert "report_leak" in f["per_intent"]
    assert (tmp_path / "confusion.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8")) == report
