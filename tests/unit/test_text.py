"""What residents type is cleaned before the assistant sees it."""

import pytest

from bot.text import MAX_MESSAGE_CHARS, clean_message


@pytest.mark.parametrize("raw,expected", [
    ("  家里漏水了  ", "家里漏水了"),
    ("\x00\x01报修\x07\x7f", "报修"),
    ("\x1b[31m报修", "[31m报修"),
    ("第一行\n\n\n第二行", "第一行\n第二行"),
    ("全角\u3000空格", "全角 空格"),
    ("零宽\u200b字符", "零宽字符"),
    ("😀🙏", "😀🙏"),
    ("", ""),
    ("   \n\t ", ""),
])
def test_control_characters_and_extra_space_are_removed(raw, expected) -> None:
    assert clean_message(raw) == expected


def test_long_messages_are_capped() -> None:
    assert len(clean_message("漏" * 5000)) == MAX_MESSAGE_CHARS


@pytest.mark.parametrize("raw", [None, 42, ["a"], {"t": 1}])
def test_non_text_becomes_empty(raw) -> None:
    assert clean_message(raw) == ""
