"""`python -m bot …`: database, community, training, dispatcher, run, console, staff, handoff, WeChat, chat."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import List, Optional
from zoneinfo import ZoneInfo

from bot.config import PROJECT_ROOT, Settings, rasa_env, read_env_file


def _today(settings: Settings) -> dt.date:
    return dt.datetime.now(ZoneInfo(settings.timezone)).date()


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    """Create or upgrade the database schema."""
    from bot.store.db import migrate

    migrate(settings.database_url)
    print(f"database: schema up to date ({_safe_url(settings.database_url)})")
    return 0


def cmd_load_community(settings: Settings, args: argparse.Namespace) -> int:
    """Load grids, staff, groups, teams and clinics from the community folder (recorded in the audit log): its
    `community.yml` and, for a street office with several communities, every other `*.yml` there. A file that
    cannot be loaded is named with the reason (exit 2) and nothing is written."""
    from bot.errors import InvalidInput

    try:
        return _load_community(settings, args)
    except InvalidInput as exc:
        print(f"community: not loaded, nothing was changed: {exc.message}", file=sys.stderr)
        return 2


def _load_community(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services import community_edits
    from bot.services.community import community_key, load_clinics, load_community, read_community_folder
    from bot.store.db import make_engine, make_session_factory, unit_of_work
    from bot.store.models import AuditEntry

    folder = Path(args.dir) if args.dir else settings.community_dir
    files = read_community_folder(folder)  # listed and read once: the digest covers exactly what is loaded
    datas = [f.data for f in files]
    digest = hashlib.sha256(b"".join(hashlib.sha256(f.path.name.encode() + b"\0" + f.raw).digest()
                                     for f in files)).hexdigest()
    names = ", ".join(f.path.name for f in files)
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            last = (session.query(AuditEntry).filter_by(entity="community_file", action="load")
                    .order_by(AuditEntry.id.desc()).first())
            if getattr(args, "if_changed", False) and last is not None and (last.after or {}).get("sha256") == digest:
                # Unchanged since the last load: keep what admins edited in the console; refresh the demo clinics.
                clinics = sum(load_clinics(session, data, _today(settings)) for data in datas)
                print(f"community: {names} unchanged since the last load; console edits kept "
                      f"({clinics} clinics refreshed)")
                return 0
            loaded = [(community_key(data), load_community(session, data, _today(settings))) for data in datas]
            for file, (key, counts) in zip(files, loaded):
                community_edits.audit(session, "community-file", "community_file", str(file.path), "load",
                                      None, {"sha256": digest, "community": key, **counts})
    finally:
        engine.dispose()
    for key, counts in loaded:
        print(f"community {key}: loaded " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def cmd_train(_settings: Settings, _args: argparse.Namespace) -> int:
    """Train the model if data or config changed since the last one."""
    from bot.training import ensure_model

    ensure_model()
    return 0


def cmd_validate(_settings: Settings, _args: argparse.Namespace) -> int:
    """`rasa data validate` on the training data, failing on warnings."""
    import subprocess

    from bot.training import validate_command

    return subprocess.call(validate_command(), cwd=PROJECT_ROOT, env=rasa_env())


def cmd_dispatch(settings: Settings, _args: argparse.Namespace) -> int:
    """Deliver the notification outbox until interrupted."""
    from bot.notify.dispatcher import serve

    asyncio.run(serve(settings))
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate, load the community, train if needed, and start everything."""
    from bot.runner import run
    from bot.training import ensure_model

    replicas = None
    if args.prod:
        from bot import production

        # The defaults go into the environment: every process started from here must see the same ones.
        configured = {**read_env_file(PROJECT_ROOT / ".env"), **os.environ}
        os.environ.update({k: v for k, v in production.production_env(configured).items() if k not in configured})
        settings = Settings.from_env()
        try:
            production.prepare(settings)
            replicas = production.replicas_for(settings)
        except production.ProductionUnavailable as exc:
            print(f"run-prod: {exc}", file=sys.stderr)
            return 1
    from bot.wechat.accounts import AccountsError, load_accounts

    try:  # the Rasa servers would refuse it too, with the reason buried in their log
        load_accounts(settings.wechat_accounts_file, settings.wechat_appid)
    except AccountsError as exc:
        print(f"run: the communities' WeChat accounts cannot be used: {exc}", file=sys.stderr)
        return 2
    cmd_migrate(settings, args)
    if cmd_load_community(settings, argparse.Namespace(dir=None, if_changed=True)) != 0:
        return 2  # the reason is printed; serving stale or half-read community data would be worse
    return run(settings, ensure_model(), replicas=replicas)


def cmd_handoff_release(settings: Settings, args: argparse.Namespace) -> int:
    """Hand a conversation back to the assistant after staff finished (SENDER as stored: an OpenID or rest:<sender>)."""
    from bot import identity
    from bot.services import handoff
    from bot.store.db import make_engine, make_session_factory

    try:
        identity.channel_of(args.sender)
    except identity.UnknownSenderId as exc:
        print(f"handoff: {exc}; give the conversation as stored: a WeChat OpenID, or rest:<sender> for REST",
              file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    had = handoff.release(factory, args.sender, by=args.by)
    rest_hint = ""
    if not had and identity.channel_of(args.sender) == "wechat" \
            and len(args.sender) <= identity.MAX_REST_SENDER_CHARS \
            and handoff.active(factory, identity.rest_sender(args.sender)) is not None:
        rest_hint = f"; REST conversations are stored as rest:<sender>, did you mean {identity.rest_sender(args.sender)}?"
    engine.dispose()
    if rest_hint:
        print(f"handoff: no open handoff for {args.sender}{rest_hint}", file=sys.stderr)
        return 1
    from bot.errors import DeliveryError
    from bot.rasa_api import conversation_path

    if conversation_path(args.sender) is None:
        print(f"handoff: recorded as released, but Rasa's HTTP API cannot address {args.sender!r} (it does not "
              "decode %-escapes, and this id has characters a URL path cannot carry as they are)", file=sys.stderr)
        return 1
    try:
        asyncio.run(_resume(settings, args.sender))
    except DeliveryError as exc:
        print(f"handoff: recorded as released, but the Rasa server did not take the resume event: {exc.message}",
              file=sys.stderr)
        return 1
    print(f"handoff: {args.sender} is back with the assistant" + ("" if had else " (no open handoff was recorded)"))
    return 0


async def _resume(settings: Settings, sender_id: str) -> None:
    import aiohttp

    from bot.rasa_api import RasaAPI, rasa_token

    async with aiohttp.ClientSession() as http:
        await RasaAPI(http, settings.rasa_url, rasa_token(settings), timeout=10).resume(sender_id)


def cmd_ticket_act(settings: Settings, args: argparse.Namespace) -> int:
    """Take a lifecycle action on a ticket as a staff member (the same rules as the console)."""
    from bot import lifecycle as lc
    from bot.errors import HongguanjiaError
    from bot.services import lifecycle
    from bot.store.db import make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    try:
        outcome = lifecycle.perform(make_session_factory(engine), args.staff, args.number, args.action,
                                    note=args.note, assignee=args.assignee, eta=args.eta, kind=args.kind,
                                    ctx=lifecycle.Context.from_settings(settings))
    except HongguanjiaError as exc:
        print(f"ticket: {exc.code}: {exc.message}", file=sys.stderr)
        return 2 if exc.code in ("invalid_input", "not_found") else 1
    finally:
        engine.dispose()
    print(f"ticket {outcome.number}: {lc.STATE_LABELS[outcome.from_status]} → {lc.STATE_LABELS[outcome.status]}"
          + (f" ({outcome.assignee})" if outcome.assignee else ""))
    return 0


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    """Talk to the running assistant over REST from the terminal (the conversation is stored as rest:<sender>)."""
    from bot import identity

    url = f"{settings.rasa_url}/webhooks/rest/webhook"
    headers = {"Content-Type": "application/json"}
    if settings.rest_token:
        headers["Authorization"] = f"Bearer {settings.rest_token}"
    try:
        conversation = identity.rest_sender(args.sender)
    except identity.UnknownSenderId as exc:
        print(f"chat: {exc}", file=sys.stderr)
        return 2
    print(f"会话 / conversation: {conversation}")
    print("输入消息，空行或 Ctrl-D 退出 / type a message; empty line or Ctrl-D quits")
    while True:
        try:
            text = input("居民> ")
        except EOFError:
            return 0
        if not text.strip():
            return 0
        req = urllib.request.Request(url, data=json.dumps({"sender": args.sender, "message": text}).encode(),
                                     headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - local Rasa server
                replies = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            print(f"chat: the REST channel answered {exc.code}: {_error_reason(exc)}", file=sys.stderr)
            return 1
        for reply in replies:
            print("红管家> " + reply.get("text", ""))
            for i, button in enumerate(reply.get("buttons") or [], 1):
                print(f"        {i}. {button.get('title')}")


def _error_reason(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read().decode("utf-8")).get("error") or exc.reason)
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)


MENU_FILE = Path(__file__).resolve().parent.parent / "data" / "wechat" / "menu.json"


async def push_menu(settings: Settings, path: Path, community: Optional[str] = None) -> int:
    """Replace the Official Account menu with the one in `path` through the menu API: the shared account's, or with
    `community` that community's own account's (bot/wechat/accounts.py)."""
    import aiohttp

    from bot.wechat.accounts import AccountsError, load_accounts, token_key
    from bot.wechat.client import WeChatClient
    from bot.wechat.errors import WeChatError
    from bot.wechat.token import shared_token_stores

    appid, secret, api_base = settings.wechat_appid, settings.wechat_secret, settings.wechat_api_base
    if community is not None:
        try:
            account = load_accounts(settings.wechat_accounts_file, settings.wechat_appid).get(community)
        except AccountsError as exc:
            print(f"wechat: {exc}", file=sys.stderr)
            return 2
        if account is None or not account.secret:
            print(f"wechat: community {community!r} has no account with a secret in {settings.wechat_accounts_file} "
                  "(HG_WECHAT_ACCOUNTS)", file=sys.stderr)
            return 2
        appid, secret, api_base = account.appid, account.secret, account.api_base or api_base
    elif not appid or not secret:
        print("wechat: set WECHAT_APPID and WECHAT_SECRET to push the menu", file=sys.stderr)
        return 2
    try:
        menu = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"wechat: cannot read the menu file {path}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(menu, dict) or not isinstance(menu.get("button"), list):
        print(f"wechat: {path} must be a JSON object with a \"button\" list", file=sys.stderr)
        return 2
    try:
        async with shared_token_stores(settings.redis_url, settings.http_timeout,
                                       settings.local_state_path) as stores, aiohttp.ClientSession() as http:
            client = WeChatClient(http, appid, secret, api_base, stores(token_key(appid, settings.wechat_appid)),
                                  settings.http_timeout)
            await client.create_menu(menu)
    except WeChatError as exc:
        print(f"wechat: the menu was not pushed: {exc.message}", file=sys.stderr)
        return 1
    print(f"wechat: menu pushed to {appid} ({len(menu['button'])} top-level buttons from {path})")
    return 0


def cmd_wechat_menu_push(settings: Settings, args: argparse.Namespace) -> int:
    """Push data/wechat/menu.json (or --file) as the Official Account menu."""
    return asyncio.run(push_menu(settings, Path(args.file) if args.file else MENU_FILE, args.community))


def cmd_wechat_failures(settings: Settings, args: argparse.Namespace) -> int:
    """List replies that could not be delivered to residents (newest first)."""
    from bot.services.deliveries import recent_failures
    from bot.store.db import make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    rows = recent_failures(make_session_factory(engine), args.sender, args.limit)
    engine.dispose()
    for row in rows:
        print(f"{row.created_at:%Y-%m-%d %H:%M:%S}  {row.channel}  {row.sender_id}  errcode={row.errcode}  "
              f"{row.errmsg}\n    {row.text[:200]!r}")
    if not rows:
        print("no undelivered replies")
    return 0


def _demo_password(settings: Settings) -> Optional[str]:
    from bot.errors import InvalidInput
    from bot.services.community import read_community

    try:
        console = read_community(settings.community_dir).get("console") or {}
    except InvalidInput:
        return None
    value = console.get("demo_password") if isinstance(console, dict) else None
    return str(value) if value else None


def _read_new_password() -> Optional[str]:
    import getpass

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("新密码 / new password: ")
    if getpass.getpass("再输入一次 / repeat it: ") != first:
        print("staff: the two passwords differ; nothing changed", file=sys.stderr)
        return None
    return first


def cmd_staff_password(settings: Settings, args: argparse.Namespace) -> int:
    """Set a staff member's console password (read from stdin, or asked twice on a terminal)."""
    from bot.errors import InvalidInput, NotFound
    from bot.services import accounts
    from bot.store.db import make_engine, make_session_factory
    from bot.store.models import utcnow

    password = _read_new_password()
    if password is None:
        return 2
    engine = make_engine(settings.database_url)
    try:
        staff = accounts.set_password(make_session_factory(engine), args.key, password, utcnow(),
                                      demo_password=_demo_password(settings))
    except InvalidInput as exc:
        print(f"staff: password not set: {exc.message}", file=sys.stderr)
        return 2
    except NotFound as exc:
        print(f"staff: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"staff: password set for {staff.key} ({staff.name}); their console sessions were signed out")
    return 0


def cmd_staff_token(settings: Settings, args: argparse.Namespace) -> int:
    """Issue a new API bearer token for a staff member and print it (once; it replaces any earlier one)."""
    from bot.errors import NotFound
    from bot.services import accounts
    from bot.store.db import make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    try:
        token = accounts.issue_api_token(make_session_factory(engine), args.key)
    except NotFound as exc:
        print(f"staff: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(token)
    print(f"staff: new API token for {args.key} (shown only now; any earlier token stops working). Use it as "
          f"'Authorization: Bearer <token>' with {settings.console_base_url}/api/", file=sys.stderr)
    return 0


def cmd_console(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the staff console until interrupted."""
    from bot.console.app import create_app

    app = create_app(settings)
    app.run(host=args.host or settings.console_host, port=args.port or settings.console_port, access_log=False,
            motd=False, workers=settings.console_workers)
    return 0


def _local_midnight(settings: Settings, day: dt.date) -> dt.datetime:
    """The UTC time at which `day` starts in the community's timezone."""
    start = dt.datetime.combine(day, dt.time(), ZoneInfo(settings.timezone))
    return start.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_transcripts_export(settings: Settings, args: argparse.Namespace) -> int:
    """Residents' messages since a day, flagged, grouped and masked, written to a JSON file."""
    from bot.runner import tracker_env
    from bot.services import transcripts
    from bot.store.db import make_engine, make_session_factory

    since = _local_midnight(settings, args.since)
    until = _local_midnight(settings, args.until + dt.timedelta(days=1)) if args.until else None
    if until is not None and until <= since:
        print("transcripts: --until is before --since", file=sys.stderr)
        return 2
    factory = make_session_factory(make_engine(settings.database_url))
    report = transcripts.export(tracker_env(settings)["HG_TRACKER_URL"], factory, since, until,
                                only_flagged=not args.all)
    out = args.out or PROJECT_ROOT / "reports" / f"transcripts-{args.since.isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    flags = "，".join(f"{transcripts.FLAG_LABELS[f]} {n}" for f, n in report["flags"].items() if n) or "无"
    print(f"transcripts: {report['messages']} 条居民消息，{report['flagged']} 条被标出（{flags}），"
          f"{len(report['groups'])} 组 → {out}")
    return 0


def cmd_model(settings: Settings, args: argparse.Namespace) -> int:
    """Retrain and gate a model (bot/retrain.py), each step in processes of its own; deploy, roll back and list
    models (bot/deploy.py)."""
    from bot import deploy, retrain

    rest = list(args.rest)
    if rest and rest[0] in deploy.COMMANDS:
        return deploy.main(rest, settings)
    return retrain.main(rest, settings)


def _safe_url(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="Hongguanjia (红管家) commands")
    sub = parser.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    db.add_parser("migrate", help="create or upgrade the schema").set_defaults(func=cmd_migrate)
    com = sub.add_parser("community", help="community data").add_subparsers(dest="community_command", required=True)
    load = com.add_parser("load", help="load data/community/community.yml into the database")
    load.add_argument("--dir", help="folder with community.yml (default: HG_COMMUNITY_DIR or data/community)")
    load.set_defaults(func=cmd_load_community)
    sub.add_parser("train", help="train the model if its inputs changed").set_defaults(func=cmd_train)
    sub.add_parser("validate", help="check the training data, domain and config (rasa data validate)").set_defaults(
        func=cmd_validate)
    sub.add_parser("dispatch", help="deliver queued notifications").set_defaults(func=cmd_dispatch)
    run = sub.add_parser("run", help="start everything (what `make run` does)")
    run.add_argument("--prod", action="store_true", help="production mode (what `make run-prod` does): PostgreSQL, "
                     "Redis, Rasa and action-server replicas behind nginx, a dispatcher standing by")
    run.set_defaults(func=cmd_run)
    ho = sub.add_parser("handoff", help="human handoff").add_subparsers(dest="handoff_command", required=True)
    rel = ho.add_parser("release", help="hand a conversation back to the assistant")
    rel.add_argument("sender", help="the conversation as stored: a WeChat OpenID, or rest:<sender> for REST")
    rel.add_argument("--by", default="admin")
    rel.set_defaults(func=cmd_handoff_release)
    wechat = sub.add_parser("wechat", help="WeChat Official Account").add_subparsers(dest="wechat_command",
                                                                                     required=True)
    menu = wechat.add_parser("menu", help="the account menu").add_subparsers(dest="menu_command", required=True)
    push = menu.add_parser("push", help="push the menu definition with the menu API")
    push.add_argument("--file", help="menu JSON (default: data/wechat/menu.json)")
    push.add_argument("--community", help="push to this community's own account (HG_WECHAT_ACCOUNTS), not the shared one")
    push.set_defaults(func=cmd_wechat_menu_push)
    failures = wechat.add_parser("failures", help="replies that could not be delivered to residents")
    failures.add_argument("--sender", help="only this OpenID")
    failures.add_argument("--limit", type=int, default=50)
    failures.set_defaults(func=cmd_wechat_failures)
    from bot.lifecycle import STAFF_ACTIONS

    ticket = sub.add_parser("ticket", help="tickets").add_subparsers(dest="ticket_command", required=True)
    act = ticket.add_parser("act", help="take a lifecycle action on a ticket as a staff member")
    act.add_argument("number")
    act.add_argument("action", choices=STAFF_ACTIONS)
    act.add_argument("--as", dest="staff", required=True, help="the staff key (community.yml)")
    act.add_argument("--note", help="a note, a reason (return, reassign) or what was done (resolve)")
    act.add_argument("--assignee", help="staff key (assign, reassign)")
    act.add_argument("--eta", help="when they will come, told to the resident (accept, assign)")
    act.add_argument("--kind", help="the ticket's new kind (retype): leak, repair, help or feedback")
    act.set_defaults(func=cmd_ticket_act)
    console = sub.add_parser("console", help="serve the staff console")
    console.add_argument("--port", type=int, help="port (default: HG_CONSOLE_PORT or 5010)")
    console.add_argument("--host", help="address to listen on (default: HG_CONSOLE_HOST or 127.0.0.1)")
    console.set_defaults(func=cmd_console)
    staff = sub.add_parser("staff", help="staff console accounts").add_subparsers(dest="staff_command", required=True)
    password = staff.add_parser("password", help="set a staff member's console password (stdin, or asked twice)")
    password.add_argument("key", help="the staff member's key in community.yml")
    password.set_defaults(func=cmd_staff_password)
    token = staff.add_parser("token", help="print a new API bearer token for a staff member")
    token.add_argument("key", help="the staff member's key in community.yml")
    token.set_defaults(func=cmd_staff_token)
    tr = sub.add_parser("transcripts", help="residents' messages for review").add_subparsers(
        dest="transcripts_command", required=True)
    exp = tr.add_parser("export", help="flagged messages since a day, grouped and masked, to a JSON file")
    exp.add_argument("--since", type=_date, required=True, help="first day (YYYY-MM-DD, community time)")
    exp.add_argument("--until", type=_date, default=None, help="last day, included (default: up to now)")
    exp.add_argument("--out", type=Path, default=None, help="file to write (default reports/transcripts-<since>.json)")
    exp.add_argument("--all", action="store_true", help="every message, not only the flagged ones")
    exp.set_defaults(func=cmd_transcripts_export)
    model = sub.add_parser("model", help="models: retrain, gate, deploy, rollback, list, bench (python -m bot model -h)")
    model.add_argument("rest", nargs=argparse.REMAINDER)
    model.set_defaults(func=cmd_model)
    chat = sub.add_parser("chat", help="talk to the running assistant")
    chat.add_argument("--sender", default="console-resident",
                      help="your REST sender; the conversation is stored as rest:<sender>")
    chat.set_defaults(func=cmd_chat)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `python -m bot`."""
    args = build_parser().parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(Settings.from_env(), args) or 0)
