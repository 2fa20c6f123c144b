"""The accounts file of communities with an Official Account of their own: read whole, or refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.wechat.accounts import AccountsError, load_accounts, token_key
from tests.wechat_kit import AES_KEY, APPID

GOOD = """
jinxiu:
  token: tok-jinxiu
  appid: wxjinxiu000000001
  secret: sec-jinxiu
  aes_key: kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR
  template_id: TPL-jinxiu
heping:
  token: tok-heping
  appid: wxheping000000001
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wechat_accounts.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_gives_each_community_its_account_and_keeps_secrets_out_of_repr(tmp_path: Path) -> None:
    accounts = load_accounts(_file(tmp_path, GOOD), shared_appid=APPID)
    assert sorted(accounts) == ["heping", "jinxiu"]
    jinxiu, heping = accounts["jinxiu"], accounts["heping"]
    assert (jinxiu.appid, jinxiu.secret, jinxiu.aes_key, jinxiu.template_id) == (
        "wxjinxiu000000001", "sec-jinxiu", AES_KEY, "TPL-jinxiu")
    assert heping.secret is None and heping.aes_key is None  # passive replies only, plaintext mode
    assert "tok-jinxiu" not in repr(jinxiu) and "sec-jinxiu" not in repr(jinxiu) and AES_KEY not in repr(jinxiu)


def test_no_file_and_an_empty_file_mean_no_own_accounts(tmp_path: Path) -> None:
    assert load_accounts(None) == {} and load_accounts(tmp_path / "absent.yml") == {}
    assert load_accounts(_file(tmp_path, "# none yet\n")) == {}


@pytest.mark.parametrize("text, reason", [
    ("- jinxiu\n", "expected community keys"),
    ("Jin Xiu:\n  token: t\n  appid: wx1\n", "is not a community key"),
    ("jinxiu: tok\n", "expected token"),
    ("jinxiu:\n  appid: wx1\n", "token is required"),
    ("jinxiu:\n  token: t\n", "appid is required"),
    ("jinxiu:\n  token: t\n  appid: wx1\n  secert: s\n", "unknown field(s) secert"),
    ("jinxiu:\n  token: t\n  appid: wx1\n  aes_key: short\n", "aes_key"),
    ("jinxiu:\n  token: t\n  appid: wx1\nheping:\n  token: u\n  appid: wx1\n", "is jinxiu's already"),
    (f"jinxiu:\n  token: t\n  appid: {APPID}\n", "shared account's"),
    ("jinxiu: [unclosed\n", "cannot be read as YAML"),
])
def test_an_unusable_entry_refuses_the_whole_file_naming_the_entry(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(AccountsError) as raised:
        load_accounts(_file(tmp_path, text), shared_appid=APPID)
    assert reason in str(raised.value) and str(tmp_path) in str(raised.value)


def test_each_account_keeps_its_token_under_its_own_key_and_the_shared_one_keeps_the_old_key() -> None:
    assert token_key(APPID, APPID) == "" and token_key(None, APPID) == ""
    assert token_key("wxjinxiu000000001", APPID) == ":wxjinxiu000000001"
