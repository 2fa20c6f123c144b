"""Rasa's conversation lock for several Rasa workers on one machine without Redis.

Why it exists: Rasa serves one turn at a time per conversation through a `LockStore`, and honours
SANIC_WORKERS (HG_RASA_WORKERS) only with a lock store that is not in memory: Redis, or a custom class
named in endpoints.yml. `make run` must use both cores on a fresh machine with nothing installed, so
without REDIS_URL bot/runner.py's `endpoints_file` names this store; with REDIS_URL Rasa's RedisLockStore
replaces it (and replicas may then run on several machines).

What it keeps of Rasa's `LockStore`: the ticket lock (`rasa.core.lock.TicketLock`): tickets are served in the
order they were issued (FIFO per conversation), each ticket lives `lock_lifetime` seconds (TICKET_LOCK_LIFETIME,
Rasa's default 60 s) and an expired ticket stops blocking the queue. What it changes:

- Each read-modify-write (issue a ticket, drop expired ones, finish serving) is one SQLite transaction in the
  machine's shared state file (bot/local_state.py), so two workers never issue the same ticket or lose one,
  and finishing the last ticket deletes the lock in the same step (Rasa's base class checks and deletes in
  two steps, which can delete a lock another worker just queued on).
- A queued turn polls every `POLL_SECONDS` (10 ms) instead of Rasa's 1 s, so waiting costs no visible delay.
- Each ticket records the pid that holds it: a ticket whose process has died (killed with -9 mid-turn) is
  dropped at once rather than after its lifetime. A dead pid reused by another process only falls back to
  the lifetime.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncGenerator, Callable, Dict, Optional, Text, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from bot.local_state import LocalState, StateTransaction

__all__ = ["POLL_SECONDS", "SQLiteLockStore", "process_alive"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.01
KEY_PREFIX = "rasa-lock:"


def process_alive(pid: int) -> bool:
    """Whether process `pid` on this machine still runs (a zombie, killed but not yet reaped, does not)."""
    if pid == os.getpid():
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class SQLiteLockStore(LockStore):
    """Ticket locks in the machine's shared state file.

    endpoints.yml: `lock_store: {type: bot.rasa_locks.SQLiteLockStore, path: var/local_state.db}`.
    """

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, path: Optional[Text] = None,
                 alive: Callable[[int], bool] = process_alive) -> None:
        """The file is `path`, or the endpoint's `path` key; `alive` tells whether a ticket's process still runs."""
        where = path or (endpoint_config.kwargs.get("path") if endpoint_config is not None else None)
        if not where:
            raise ValueError("SQLiteLockStore needs a `path` (endpoints.yml: lock_store.path)")
        self.state = LocalState(where)
        self._alive = alive
        super().__init__()

    # Storage: one row per conversation holding the TicketLock and the pid of each ticket.

    def _load(self, raw: Optional[str], conversation_id: Text) -> Tuple[Optional[TicketLock], Dict[int, int]]:
        if raw is None:
            return None, {}
        try:
            data = json.loads(raw)
            lock = TicketLock.from_dict(data["lock"])
            owners = {int(k): int(v) for k, v in data.get("owners", {}).items()}
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable lock record for conversation %s", conversation_id)
            return None, {}
        return lock, owners

    def _prune(self, lock: TicketLock, owners: Dict[int, int]) -> None:
        """Drop expired tickets, and the ticket being served while its process is dead.

        Only the head of the queue blocks anyone, so only its process is checked (once per poll); a dead
        process's later tickets are dropped when they reach the head.
        """
        lock.remove_expired_tickets()
        while lock.tickets:
            head = lock.tickets[0]
            pid = owners.get(head.number)
            if pid is None or self._alive(pid):
                break
            log.warning("dropping ticket %d of conversation %s: its process %d has died", head.number,
                        lock.conversation_id, pid)
            lock.tickets.popleft()
        for number in set(owners) - {t.number for t in lock.tickets}:
            del owners[number]

    @staticmethod
    def _record(lock: TicketLock, owners: Dict[int, int]) -> str:
        return json.dumps({"lock": json.loads(lock.dumps()), "owners": {str(k): v for k, v in owners.items()}})

    def _store(self, tx: StateTransaction, lock: TicketLock, owners: Dict[int, int],
               previous: Optional[str] = None) -> None:
        """Save the lock until its last ticket expires, or delete it when no ticket is left (no write if unchanged)."""
        key = KEY_PREFIX + lock.conversation_id
        if not lock.tickets:
            if previous is not None or tx.get(key) is not None:
                tx.delete(key)
            return
        record = self._record(lock, owners)
        if record == previous:
            return
        tx.set(key, record, max(max(t.expires for t in lock.tickets) - tx.now, 0.001))

    def _modify(self, conversation_id: Text, change: Callable[[TicketLock, Dict[int, int]], Any],
                create: bool = False) -> Any:
        """Load, prune, `change` and save the lock in one transaction; returns what `change` returns."""
        with self.state.transaction() as tx:
            raw = tx.get(KEY_PREFIX + conversation_id)
            lock, owners = self._load(raw, conversation_id)
            if lock is None:
                if not create:
                    return None
                lock, raw = self.create_lock(conversation_id), None
            previous = self._record(lock, owners) if raw is not None else None
            self._prune(lock, owners)
            result = change(lock, owners)
            self._store(tx, lock, owners, previous)
            return result

    # Rasa's LockStore interface.

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        """The lock of `conversation_id` with dead processes' tickets left out, or None."""
        lock, owners = self._load(self.state.get(KEY_PREFIX + conversation_id), conversation_id)
        if lock is not None:
            self._prune(lock, owners)
        return lock

    def save_lock(self, lock: TicketLock) -> None:
        """Store `lock` as it is (tickets it shares with the stored lock keep their pids)."""
        with self.state.transaction() as tx:
            _stored, owners = self._load(tx.get(KEY_PREFIX + lock.conversation_id), lock.conversation_id)
            numbers = {t.number for t in lock.tickets}
            self._store(tx, lock, {n: pid for n, pid in owners.items() if n in numbers})

    def delete_lock(self, conversation_id: Text) -> None:
        """Forget the lock of `conversation_id`."""
        self._log_deletion(conversation_id, self.state.delete(KEY_PREFIX + conversation_id))

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Queue a ticket valid for `lock_lifetime` seconds, atomically; returns its number."""

        def issue(lock: TicketLock, owners: Dict[int, int]) -> int:
            number = lock.issue_ticket(lock_lifetime)
            owners[number] = os.getpid()
            return number

        try:
            return self._modify(conversation_id, issue, create=True)
        except Exception as exc:  # noqa: BLE001 - Rasa's contract: any failure here is a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc

    def update_lock(self, conversation_id: Text) -> None:
        """Drop expired and orphaned tickets, atomically."""
        self._modify(conversation_id, lambda _lock, _owners: None)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Remove ticket `ticket_number`; the lock goes with its last ticket (one transaction)."""
        self._modify(conversation_id, lambda lock, _owners: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Finish serving `ticket_number`; `finish_serving` already deletes a lock nobody waits for."""
        self.finish_serving(conversation_id, ticket_number)

    @asynccontextmanager
    async def lock(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = POLL_SECONDS) -> AsyncGenerator[TicketLock, None]:
        """Rasa's `LockStore.lock`, polling every `POLL_SECONDS` by default instead of every second."""
        async with super().lock(conversation_id, lock_lifetime, wait_time_in_seconds) as held:
            yield held
