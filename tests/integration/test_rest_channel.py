"""The REST channel speaks in its own sender namespace, and on a real WeChat account only with the REST token."""

from __future__ import annotations

import tempfile
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Optional, Tuple

import aiohttp
import pytest

from bot import messages
from bot.channels.rest import DISABLED, ResidentRestInput
from bot.wechat.demo import DEMO_TOKEN
from tests.wechat_kit import StubAssistant, serve_blueprint

REAL_WECHAT_TOKEN = "a-real-accounts-token-7c41"
REST_TOKEN = "rest-token-d81f0c2a9e"
OPENID = "oWX3s5V9mJ2kq7-abcDEFghij_01"


class RestClient:
    """A REST client of a served channel."""

    def __init__(self, base: str, http: aiohttp.ClientSession, assistant: StubAssistant) -> None:
        self.base = base
        self.http = http
        self.assistant = assistant

    async def post(self, body: Any, token: Optional[str] = None,
                   authorization: Optional[str] = None) -> Tuple[int, Any, Dict[str, str]]:
        """POST a body (JSON unless bytes); returns status, decoded JSON and headers."""
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if authorization is not None:
            headers["Authorization"] = authorization
        kwargs: Dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with self.http.post(f"{self.base}/webhook", headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None), dict(resp.headers)

    async def health(self) -> Dict[str, Any]:
        """GET / of the channel."""
        async with self.http.get(f"{self.base}/") as resp:
            return await resp.json()


@asynccontextmanager
async def served_rest(monkeypatch: pytest.MonkeyPatch, wechat_token: str = "",
                      rest_token: str = "", **env: str) -> AsyncIterator[RestClient]:
    """The channel as Rasa builds it (from_credentials, settings from the environment), served with a stub assistant;
    its state file (the rate limit's counts) in a folder of its own."""
    # Empty values win over a developer's .env, so each test sees exactly the configuration it names.
    monkeypatch.setenv("WECHAT_TOKEN", wechat_token)
    monkeypatch.setenv("HG_REST_TOKEN", rest_token)
    monkeypatch.setenv("REDIS_URL", "")
    var = tempfile.TemporaryDirectory()
    monkeypatch.setenv("HG_VAR_DIR", var.name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    channel = ResidentRestInput.from_credentials(None)
    assistant = StubAssistant()
    async with serve_blueprint(channel.blueprint(assistant), "/webhooks/rest") as base:
        async with aiohttp.ClientSession() as http:
            yield RestClient(base, http, assistant)
    var.cleanup()


# Sender namespace --------------------------------------------------------------------------------

async def test_the_assistant_sees_a_rest_sender_in_the_rest_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    async with served_rest(monkeypatch) as rest:
        status, replies, _ = await rest.post({"sender": OPENID, "message": "你好"})
    assert status == 200
    assert rest.assistant.turns == [(f"rest:{OPENID}", "你好")]
    assert [r["text"] for r in replies] == ["您说：你好", "还有什么可以帮您？"]


async def test_replies_are_addressed_to_the_clients_own_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    async with served_rest(monkeypatch) as rest:
        _, replies, _ = await rest.post({"sender": "resident-1", "message": "要按钮"})
        _, numeric, _ = await rest.post({"sender": 42, "message": "你好"})
    assert {r["recipient_id"] for r in replies} == {"resident-1"}
    assert replies[1]["buttons"][0]["payload"] == "/affirm"
    assert {r["recipient_id"] for r in numeric} == {"42"}
    assert rest.assistant.turns[1][0] == "rest:42"


async def test_an_empty_message_and_a_crashed_turn_answer_the_clients_sender(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with served_rest(monkeypatch) as rest:
        _, empty, _ = await rest.post({"sender": "resident-1", "message": "  "})
        _, crashed, _ = await rest.post({"sender": "resident-1", "message": "坏了"})
    assert empty == [{"recipient_id": "resident-1", "text": messages.EMPTY_MESSAGE}]
    assert crashed == [{"recipient_id": "resident-1", "text": messages.TURN_FAILED}]


# Access --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("authorization", [None, f"Bearer {REST_TOKEN}x", "Bearer ", f"Basic {REST_TOKEN}",
                                           REST_TOKEN])
async def test_a_real_account_refuses_rest_without_the_right_token(monkeypatch: pytest.MonkeyPatch,
                                                                   authorization: Optional[str]) -> None:
    async with served_rest(monkeypatch, REAL_WECHAT_TOKEN, REST_TOKEN) as rest:
        status, body, headers = await rest.post({"sender": OPENID, "message": "查进度"}, authorization=authorization)
    assert status == 401
    assert "token" in body["error"]
    assert headers.get("WWW-Authenticate") == "Bearer"
    assert rest.assistant.turns == []


async def test_a_real_account_serves_rest_with_the_right_token(monkeypatch: pytest.MonkeyPatch) -> None:
    async with served_rest(monkeypatch, REAL_WECHAT_TOKEN, REST_TOKEN) as rest:
        status, replies, _ = await rest.post({"sender": "app-user-7", "message": "你好"}, token=REST_TOKEN)
        health = await rest.health()
    assert status == 200 and replies[0]["recipient_id"] == "app-user-7"
    assert rest.assistant.turns == [("rest:app-user-7", "你好")]
    assert health == {"status": "ok"}


async def test_a_real_account_without_a_rest_token_disables_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    async with served_rest(monkeypatch, REAL_WECHAT_TOKEN) as rest:
        without = await rest.post({"sender": OPENID, "message": "查进度"})
        guessing = await rest.post({"sender": OPENID, "message": "查进度"}, token="anything")
        health = await rest.health()
    for status, body, _ in (without, guessing):
        assert status == 503
        assert body == {"error": DISABLED} and body["error"].startswith("REST channel disabled")
    assert health == {"status": "disabled"}
    assert rest.assistant.turns == []


async def test_a_communitys_own_account_is_a_real_account_too(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path) -> None:
    accounts = tmp_path / "wechat_accounts.yml"
    accounts.write_text("jinxiu:\n  token: jinxiu-token\n  appid: wxjinxiu00000r001\n", encoding="utf-8")
    async with served_rest(monkeypatch, "", HG_WECHAT_ACCOUNTS=str(accounts)) as rest:
        status, body, _ = await rest.post({"sender": OPENID, "message": "查进度"})
    assert status == 503 and body == {"error": DISABLED}
    assert rest.assistant.turns == []


@pytest.mark.parametrize("wechat_token", ["", DEMO_TOKEN])
async def test_rest_is_open_without_a_wechat_account_or_on_the_demo_account(monkeypatch: pytest.MonkeyPatch,
                                                                             wechat_token: str) -> None:
    async with served_rest(monkeypatch, wechat_token) as rest:
        status, replies, _ = await rest.post({"sender": "resident-1", "message": "你好"})
        stray, _, _ = await rest.post({"sender": "resident-1", "message": "你好"}, token="left-over-header")
    assert status == 200 and replies[0]["text"] == "您说：你好"
    assert stray == 200  # nothing to check a token against: the header is ignored, as before


async def test_the_demo_account_accepts_a_configured_token_and_catches_a_wrong_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with served_rest(monkeypatch, DEMO_TOKEN, REST_TOKEN) as rest:
        right, _, _ = await rest.post({"sender": "resident-1", "message": "你好"}, token=REST_TOKEN)
        none, _, _ = await rest.post({"sender": "resident-1", "message": "你好"})
        wrong, body, _ = await rest.post({"sender": "resident-1", "message": "你好"}, token="not-it")
    assert (right, none, wrong) == (200, 200, 401)
    assert body == {"error": "wrong token"}


# Bad bodies ---------------------------------------------------------------------------------------

BAD_BODIES = {
    "not json": b"{sender: 1",
    "a list": [{"sender": "a", "message": "b"}],
    "no sender": {"message": "你好"},
    "blank sender": {"sender": "  ", "message": "你好"},
    "boolean sender": {"sender": True, "message": "你好"},
    "object sender": {"sender": {"id": 1}, "message": "你好"},
    "overlong sender": {"sender": "x" * 124, "message": "你好"},
    "numeric message": {"sender": "resident-1", "message": 5},
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
@pytest.mark.parametrize("account", ["open", "real"])
async def test_bad_bodies_are_refused_with_a_reason(monkeypatch: pytest.MonkeyPatch, name: str, account: str) -> None:
    wechat_token, rest_token = (REAL_WECHAT_TOKEN, REST_TOKEN) if account == "real" else ("", "")
    async with served_rest(monkeypatch, wechat_token, rest_token) as rest:
        status, body, _ = await rest.post(BAD_BODIES[name], token=rest_token or None)
    assert status == 400 and body["error"]
    assert rest.assistant.turns == []


async def test_a_sender_of_the_longest_allowed_length_fits_the_stored_sender_id(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with served_rest(monkeypatch) as rest:
        status, _, _ = await rest.post({"sender": "x" * 123, "message": "你好"})
    assert status == 200
    assert len(rest.assistant.turns[0][0]) == 128


# Rate limit --------------------------------------------------------------------------------------------------

async def test_a_sender_over_the_rate_limit_is_asked_to_wait_and_the_assistant_never_sees_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    await _not_near_the_end_of_a_minute()
    async with served_rest(monkeypatch, HG_SENDER_RATE_PER_MINUTE="3") as rest:
        answers = [await rest.post({"sender": "flood-1", "message": f"第{i}条"}) for i in range(5)]
        other = await rest.post({"sender": "calm-1", "message": "你好"})
    assert [status for status, _, _ in answers] == [200] * 5
    assert [replies[0]["text"] for _, replies, _ in answers[3:]] == [messages.SENT_TOO_FAST] * 2
    assert answers[4][1] == [{"recipient_id": "flood-1", "text": messages.SENT_TOO_FAST}]
    assert answers[4][2].get("Retry-After") == "60"
    assert rest.assistant.turns == [("rest:flood-1", f"第{i}条") for i in range(3)] + [("rest:calm-1", "你好")]
    assert other[1][0]["text"] == "您说：你好"


async def _not_near_the_end_of_a_minute() -> None:
    """The limit counts per clock minute: start a burst well inside one."""
    import asyncio
    import time

    if time.time() % 60 > 50:
        await asyncio.sleep(61 - time.time() % 60)
