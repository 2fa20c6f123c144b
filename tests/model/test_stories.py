"""Dialogue: the test stories are predicted without a single wrong action."""

from __future__ import annotations

import pytest

from tests.helpers import REPORTS, run_rasa

pytestmark = pytest.mark.slow


def test_all_test_stories_pass(trained_model) -> None:
    out = REPORTS / "stories"
    result = run_rasa(["test", "core", "--model", str(trained_model), "--stories", "tests/stories",
                       "--out", str(out), "--fail-on-prediction-errors"])
    assert result.returncode == 0, (result.stdout[-3000:] + result.stderr[-3000:])
    assert not (out / "failed_test_stories.yml").read_text(encoding="utf-8").strip().startswith("- story") if (
        out / "failed_test_stories.yml").exists() else True
