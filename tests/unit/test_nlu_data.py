"""bot/nlu_data.py: the one reader of NLU YAML files."""

from pathlib import Path

from bot.nlu_data import examples, examples_by_intent, norm, strip_markup

FILE = """version: "3.1"
nlu:
- intent: report_leak
  examples: |
    - [吉利花园](estate)[5号楼](building)楼上漏水
    - 厨房顶上滴水{"entity": "x"}
- intent: faq/office_hours
  examples: |
    - 居委会几点上班
- synonym: 吉利花园
  examples: |
    - 吉利
- lookup: estate
  examples: |
    - 和顺里
"""


def test_markup_is_removed_and_only_intent_blocks_count(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(FILE, encoding="utf-8")
    assert examples(tmp_path / "a.yml") == [("吉利花园5号楼楼上漏水", "report_leak"),
                                           ('厨房顶上滴水{"entity": "x"}', "report_leak"),
                                           ("居委会几点上班", "faq/office_hours")]
    assert examples(tmp_path / "a.yml", base_intents=True)[-1] == ("居委会几点上班", "faq")


def test_a_folder_is_read_recursively_as_rasa_reads_it(tmp_path: Path) -> None:
    (tmp_path / "reviewed").mkdir()
    (tmp_path / "a.yml").write_text(FILE, encoding="utf-8")
    (tmp_path / "reviewed" / "2026-12-01.yml").write_text(
        "nlu:\n- intent: greet\n  examples: |\n    - 你好呀\n", encoding="utf-8")
    assert examples_by_intent(tmp_path)["greet"] == ["你好呀"]
    assert len(examples_by_intent(tmp_path)["report_leak"]) == 2


def test_strip_markup_and_norm() -> None:
    assert strip_markup(" [3](building)号楼[2单元]{\"entity\": \"unit\"}301 ") == "3号楼2单元301"
    assert norm("你好，  请问 A栋？") == "你好请问a栋"
