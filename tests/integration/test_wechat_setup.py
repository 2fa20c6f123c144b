"""The channel is registered for Rasa without WeChat secrets in YAML, and the menu goes out through the menu API."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.wechat import WeChatInput
from bot.cli import MENU_FILE, push_menu
from bot.config import PROJECT_ROOT, Settings
from bot.devtools.fake_wechat import FakeWeChat, running_fake_wechat

WECHAT_VARS = ("WECHAT_TOKEN", "WECHAT_APPID", "WECHAT_SECRET", "WECHAT_AES_KEY", "WECHAT_API_BASE", "REDIS_URL")


def _settings(base_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env({"WECHAT_APPID": "wxmenu0000000001", "WECHAT_SECRET": "menu-secret",
                              "WECHAT_API_BASE": base_url, "HG_VAR_DIR": str(tmp_path)}, env_file=tmp_path / ".env")


def test_rasa_loads_both_channels_from_credentials_yml_with_no_wechat_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.run import create_http_input_channels

    for name in WECHAT_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(PROJECT_ROOT)
    monkeypatch.setattr("bot.config.read_env_file", lambda _path: {})  # a developer's .env must not count
    channels = create_http_input_channels(None, str(PROJECT_ROOT / "credentials.yml"))
    assert sorted(c.name() for c in channels) == ["rest", "wechat"]
    wechat = next(c for c in channels if isinstance(c, WeChatInput))
    assert not wechat.config.configured
    lines = (PROJECT_ROOT / "credentials.yml").read_text(encoding="utf-8").splitlines()
    assert not [line for line in lines if "${" in line and not line.lstrip().startswith("#")]


def test_credentials_keys_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_TOKEN", "from-env")
    monkeypatch.setenv("HG_WECHAT_PASSIVE_SECONDS", "3.5")
    channel = WeChatInput.from_credentials({"token": "from-yaml", "appid": "wxyaml"})
    assert (channel.config.token, channel.config.appid, channel.config.passive_seconds) == ("from-yaml", "wxyaml", 3.5)
    assert "from-yaml" not in repr(channel.config)


def test_a_malformed_aes_key_stops_the_channel_at_start_up() -> None:
    with pytest.raises(ValueError, match="EncodingAESKey"):
        WeChatInput.from_credentials({"token": "t", "appid": "wx1", "aes_key": "too-short"})


async def test_menu_push_sends_the_menu_file_and_the_fake_accepts_it(tmp_path: Path) -> None:
    fake = FakeWeChat(appid="wxmenu0000000001", secret="menu-secret")
    async with running_fake_wechat(fake) as server:
        assert await push_menu(_settings(server.base_url, tmp_path), MENU_FILE) == 0
    assert fake.errcodes() == [0, 0]  # the token, then the menu
    pushed = fake.menus[0].payload
    keys = {leaf["key"] for button in pushed["button"] for leaf in button.get("sub_button") or [button]}
    assert keys == {"REPORT_LEAK", "REPAIR", "CLINIC", "VOLUNTEER", "MY_TICKETS", "HUMAN"}


async def test_a_refused_menu_reports_the_errcode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "menu.json"
    bad.write_text('{"button": [{"type": "click", "name": "太长的名字超过了十六个字节", "key": "X"}]}', encoding="utf-8")
    async with running_fake_wechat(FakeWeChat(appid="wxmenu0000000001", secret="menu-secret")) as server:
        assert await push_menu(_settings(server.base_url, tmp_path), bad) == 1
    assert "40018" in capsys.readouterr().err


async def test_menu_push_without_credentials_explains_what_is_missing(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env({"HG_VAR_DIR": str(tmp_path)}, env_file=tmp_path / ".env")
    assert await push_menu(settings, MENU_FILE) == 2
    assert "WECHAT_APPID" in capsys.readouterr().err


@pytest.mark.parametrize("seconds", ["0", "5", "7.5"])
def test_a_passive_budget_outside_wechats_five_seconds_is_refused(seconds: str) -> None:
    with pytest.raises(ValueError, match="HG_WECHAT_PASSIVE_SECONDS"):
        WeChatInput.from_credentials({"token": "t", "passive_seconds": seconds})


async def test_menu_push_to_a_communitys_own_account_uses_that_accounts_credentials(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    own = FakeWeChat(appid="wxjinxiu00000m001", secret="jinxiu-menu-secret")
    async with running_fake_wechat(own) as server:
        accounts = tmp_path / "wechat_accounts.yml"
        accounts.write_text(f"jinxiu:\n  token: t\n  appid: {own.appid}\n  secret: {own.secret}\n"
                            f"  api_base: {server.base_url}\nheping:\n  token: u\n  appid: wxheping0000m001\n",
                            encoding="utf-8")
        settings = Settings.from_env({"WECHAT_APPID": "wxmenu0000000001", "WECHAT_SECRET": "menu-secret",
                                      "WECHAT_API_BASE": "http://127.0.0.1:9", "HG_VAR_DIR": str(tmp_path),
                                      "HG_WECHAT_ACCOUNTS": str(accounts)}, env_file=tmp_path / ".env")
        assert await push_menu(settings, MENU_FILE, "jinxiu") == 0
        assert own.errcodes() == [0, 0] and len(own.menus) == 1  # the shared account's API was never called
        assert "wxjinxiu00000m001" in capsys.readouterr().out
        assert await push_menu(settings, MENU_FILE, "heping") == 2  # no secret: nothing can be pushed
        assert await push_menu(settings, MENU_FILE, "nosuch") == 2
        assert capsys.readouterr().err.count("has no account with a secret") == 2


def test_a_malformed_accounts_file_stops_the_channel_at_start_up(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.wechat.accounts import AccountsError

    accounts = tmp_path / "wechat_accounts.yml"
    accounts.write_text("jinxiu:\n  appid: wx1\n", encoding="utf-8")
    monkeypatch.setenv("HG_WECHAT_ACCOUNTS", str(accounts))
    with pytest.raises(AccountsError, match="jinxiu: token is required"):
        WeChatInput.from_credentials({"token": "t", "appid": "wx0"})
