"""The deploy gate: a drop of more than one point of intent macro-F1 on any held-out file, or any failing test
story, refuses the candidate, and every reason is given."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.retrain import MAX_DROP, FileResult, verdict


def _file(name: str, before: float, after: float) -> FileResult:
    return FileResult(name, before, after, {}, {}, [])


def test_no_worse_passes_and_a_drop_over_one_point_is_refused_with_the_file_named() -> None:
    assert verdict([_file("a.yml", 0.94, 0.935), _file("b.yml", 0.96, 0.97)], 0).passed
    blocked = verdict([_file("a.yml", 0.94, 0.925), _file("b.yml", 0.96, 0.97)], 0)
    assert not blocked.passed and len(blocked.reasons) == 1 and "a.yml" in blocked.reasons[0]


def test_a_failing_story_or_stories_that_could_not_run_refuse() -> None:
    assert verdict([_file("a.yml", 0.9, 0.95)], 1).reasons == ["测试对话有 1 个没通过"]
    assert not verdict([_file("a.yml", 0.9, 0.95)], 0, "exit 1").passed


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=4), st.integers(0, 3))
def test_the_gate_passes_exactly_when_no_file_drops_more_than_one_point_and_no_story_fails(pairs, failed) -> None:
    files = [_file(f"f{i}.yml", b, a) for i, (b, a) in enumerate(pairs)]
    expected = failed == 0 and all(b - a <= MAX_DROP + 1e-9 for b, a in pairs)
    decided = verdict(files, failed)
    assert decided.passed == expected
    assert len(decided.reasons) == sum(b - a > MAX_DROP + 1e-9 for b, a in pairs) + (failed > 0)


def test_a_model_that_does_not_exist_is_refused_with_a_reason(tmp_path, capsys) -> None:
    from bot.retrain import main

    assert main(["gate", str(tmp_path / "none.tar.gz"), "--against", str(tmp_path / "old.tar.gz")]) == 2
    assert "no model at" in capsys.readouterr().err
