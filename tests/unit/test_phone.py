"""Finding, validating and masking phone numbers."""

from __future__ import annotations

from typing import Optional

import pytest

from bot.phone import is_valid_phone, mask_phone, normalize_phone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # mobiles
        ("13812345678", "13812345678"),
        ("15900001111", "15900001111"),
        ("19912345678", "19912345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("138 - 1234 - 5678", None),  # separators are single characters
        ("+86 138 1234 5678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("86 13812345678", "13812345678"),
        ("0086 13812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("１３８－１２３４－５６７８", "13812345678"),
        ("电话13812345678谢谢", "13812345678"),
        ("我住3号楼2单元501，电话13812345678", "13812345678"),
        ("手机：138 1234 5678，晚上打", "13812345678"),
        ("TEL13812345678", "13812345678"),
        # Tianjin landlines
        ("022-23456789", "022-23456789"),
        ("022 2345 6789", "022-23456789"),
        ("02223456789", "022-23456789"),
        ("(022)2345 6789", "022-23456789"),
        ("（022）2345-6789", "022-23456789"),
        ("(022) 23456789", "022-23456789"),
        ("022-2345-6789", "022-23456789"),
        ("23456789", "022-23456789"),
        ("2345-6789", "022-23456789"),
        ("88886666", "022-88886666"),
        ("+86 22 2345 6789", "022-23456789"),
        ("家里电话23456789", "022-23456789"),
        ("０２２－２３４５６７８９", "022-23456789"),
        # the first number wins
        ("13812345678 或 022-23456789", "13812345678"),
        ("022-23456789 或 13812345678", "022-23456789"),
    ],
)
def test_phone_numbers_in_free_text_are_normalised(text: str, expected: Optional[str]) -> None:
    assert normalize_phone(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "12345678901",  # 12x is not a mobile prefix
        "12188888888",
        "10086",
        "2345678901",
        "223456789012",
        "12345678",  # local numbers start with 2-8
        "92345678",
        "02345678",
        "2345678",  # 7 digits
        "021-23456789",  # Shanghai
        "(021)23456789",
        "010-23456789",  # Beijing
        "0755-23456789",
        "HG-20261128-0001",
        "工单号HG-20261128-0001",
        "20261128-0001",
        "3-2-501",
        "3号楼2单元501",
        "2026-11-28",
        "身份证120101199001011234",
    ],
)
def test_other_numbers_are_not_phone_numbers(text: str) -> None:
    assert normalize_phone(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "😀📞",
        "call me maybe",
        "'; DROP TABLE residents; --",
        "SELECT phone FROM residents",
        "啊" * 5000,
        "1" * 5000,
        "1-" * 2500,
        "１" * 5000,
        "\x00",
    ],
)
def test_junk_input_has_no_phone_number(text: str) -> None:
    assert normalize_phone(text) is None
    assert is_valid_phone(text) is False
    assert mask_phone(text) == "****"


def test_a_phone_at_the_end_of_a_long_message_is_still_found() -> None:
    assert normalize_phone("啊" * 5000 + "13812345678") == "13812345678"


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("13812345678", True),
        (" 13812345678 ", True),
        ("138-1234-5678", True),
        ("+86 138 1234 5678", True),
        ("022-23456789", True),
        ("(022)2345 6789", True),
        ("23456789", True),
        ("电话13812345678", False),
        ("13812345678 谢谢", False),
        ("1381234567", False),
        ("021-23456789", False),
        ("12345678", False),
    ],
)
def test_a_valid_phone_is_one_number_and_nothing_else(text: str, valid: bool) -> None:
    assert is_valid_phone(text) is valid


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("+8613812345678", "138****5678"),
        ("022-23456789", "022-****6789"),
        ("23456789", "022-****6789"),
        ("(022)2345 6789", "022-****6789"),
    ],
)
def test_masking_keeps_only_the_ends_of_the_number(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize("phone", ["", "abc", "1381234567", "021-23456789"])
def test_masking_something_that_is_not_a_phone_reveals_nothing(phone: str) -> None:
    assert mask_phone(phone) == "****"


@pytest.mark.parametrize("phone", ["13812345678", "022-23456789"])
def test_normalised_numbers_are_valid_and_stable(phone: str) -> None:
    assert is_valid_phone(phone)
    assert normalize_phone(phone) == phone
