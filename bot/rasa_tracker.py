"""The Rasa server's tracker store: Rasa's SQL store, without reloading the whole session every turn.

endpoints.yml names it (`tracker_store: type: bot.rasa_tracker.CachingSQLTrackerStore`); the settings are
those of Rasa's `SQL` store, and the table is Rasa's own `events` table, so the data is the same whichever
of the two reads it.

Rasa's `SQLTrackerStore` reads every event of the current session and replays them into a new tracker on
each turn, counts the stored events again before each save, and (with SQLite and SQLAlchemy 1.4) opens a
new database connection for each of those. Under load that was 9 % + 7 % of the Rasa server's CPU, and it
grows with the length of the conversation. Here each process keeps the trackers it last saved or loaded
(the most recent `CACHE_SIZE` conversations):

- `retrieve` asks the database only for the events stored after the last one this process knows (one
  indexed query) and applies them to the kept tracker. So a conversation whose turns alternate between
  several Rasa workers stays exact: each worker catches up on what the others stored. The turn lock
  (Rasa's lock store) makes sure only one turn of a conversation runs at a time.
- A kept tracker is handed out only if it holds exactly the events stored (a turn that failed before
  saving leaves unsaved events on it: the tracker is then rebuilt from the database), and a new session
  stored by another process (a `session_started` event) also rebuilds it, so a retrieved tracker always
  holds the latest session only, as with Rasa's store.
- `save` writes the events after the ones known to be stored, without counting them again.
- On PostgreSQL, pooled connections are checked before use (`pool_pre_ping`), so a database restart costs no
  resident a failed turn.

Everything else (`retrieve_full_tracker`, `keys`, the schema) is Rasa's. With an event broker configured,
the events streamed are the same ones that are saved.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
from dataclasses import dataclass
from typing import Any, List, Optional, Text

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker

log = logging.getLogger(__name__)

CACHE_SIZE = 2000  # conversations kept per process (a tracker is a few KB to a few hundred KB)


@dataclass
class _Kept:
    """A tracker this process saved or loaded, with how much of it is stored."""

    tracker: DialogueStateTracker
    stored: int   # how many of tracker.events are in the database
    last_id: int  # the highest `events.id` of this conversation that the tracker holds


class CachingSQLTrackerStore(SQLTrackerStore):
    """Rasa's SQL tracker store that catches up on new events instead of reloading the session."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            # One pooled connection per thread instead of a new connection for every query.
            self.engine.dispose()
            self.engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=5, max_overflow=10,
                                           connect_args={"check_same_thread": False, "timeout": 30})

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        elif url.get_backend_name() == "postgresql":
            # Rasa's engine hands out pooled connections unchecked: after a PostgreSQL restart each of them failed
            # one turn. Checked before use, a dead connection is replaced instead.
            from rasa.core.tracker_store import create_engine_kwargs

            self.engine.dispose()
            self.engine = sa.create_engine(url, pool_pre_ping=True, **create_engine_kwargs(url))
            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self._kept: "collections.OrderedDict[str, _Kept]" = collections.OrderedDict()
        self.reloads = 0  # whole-session loads, for tests and curiosity
        self.catch_ups = 0

    # -- the cache -------------------------------------------------------------------------------------

    def _keep(self, sender_id: Text, kept: _Kept) -> None:
        self._kept[sender_id] = kept
        self._kept.move_to_end(sender_id)
        while len(self._kept) > CACHE_SIZE:
            self._kept.popitem(last=False)

    def forget(self, sender_id: Optional[Text] = None) -> None:
        """Drop the kept tracker of one conversation (or of all)."""
        if sender_id is None:
            self._kept.clear()
        else:
            self._kept.pop(sender_id, None)

    # -- Rasa's interface ------------------------------------------------------------------------------

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The tracker of the latest session: the kept one brought up to date, or loaded whole."""
        kept = self._kept.get(sender_id)
        if kept is not None and len(kept.tracker.events) == kept.stored:
            with self.session_scope() as session:
                rows = (session.query(self.SQLEvent.id, self.SQLEvent.type_name, self.SQLEvent.data)
                        .filter(self.SQLEvent.sender_id == sender_id, self.SQLEvent.id > kept.last_id)
                        .order_by(self.SQLEvent.id).all())
            events = [Event.from_parameters(json.loads(row.data)) for row in rows]
            if all(events) and not any(isinstance(e, SessionStarted) for e in events):
                for event in events:
                    kept.tracker.update(event)
                if rows:
                    self.catch_ups += 1
                    kept.last_id = rows[-1].id
                    kept.stored = len(kept.tracker.events)
                self._kept.move_to_end(sender_id)
                return kept.tracker
        return self._load(sender_id)

    def _load(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        self._kept.pop(sender_id, None)
        self.reloads += 1
        with self.session_scope() as session:
            rows = self._event_query(session, sender_id, fetch_events_from_all_sessions=False).all()
        if not rows or not self.domain:
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, [json.loads(r.data) for r in rows], self.domain.slots)
        if len(tracker.events) == len(rows) and _latest_session_only(tracker):
            self._keep(sender_id, _Kept(tracker, stored=len(rows), last_id=max(r.id for r in rows)))
        return tracker

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Stream the events about to be saved (Rasa's version compares with a retrieved tracker, which
        here may be this very tracker)."""
        if self.event_broker is None:
            return None
        await self._stream_new_events(self.event_broker, self._unsaved(tracker), tracker.sender_id)

    def _unsaved(self, tracker: DialogueStateTracker, session: Any = None) -> List[Event]:
        kept = self._kept.get(tracker.sender_id)
        if kept is not None and kept.tracker is tracker:
            return list(itertools.islice(tracker.events, kept.stored, None))
        if session is None:
            with self.session_scope() as own:
                return self._unsaved(tracker, own)
        stored = self._event_query(session, tracker.sender_id, fetch_events_from_all_sessions=False).count()
        return list(itertools.islice(tracker.events, stored, None))

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the tracker's events that are not stored yet; keep the tracker."""
        await self.stream_events(tracker)
        with self.session_scope() as session:
            new = self._unsaved(tracker, session)
            rows = []
            for event in new:
                data = event.as_dict()
                rows.append(self.SQLEvent(
                    sender_id=tracker.sender_id, type_name=event.type_name, timestamp=data.get("timestamp"),
                    intent_name=data.get("parse_data", {}).get("intent", {}).get("name"),
                    action_name=data.get("name"), data=json.dumps(data)))
            session.add_all(rows)
            session.flush()
            if rows:
                last_id = rows[-1].id
            else:
                last_id = session.query(sa.func.max(self.SQLEvent.id)).filter(
                    self.SQLEvent.sender_id == tracker.sender_id).scalar() or 0
            session.commit()
        if not _latest_session_only(tracker):
            # It holds an earlier session too: the next retrieve loads the latest one alone, as Rasa's does.
            self._kept.pop(tracker.sender_id, None)
            return
        self._keep(tracker.sender_id, _Kept(tracker, stored=len(tracker.events), last_id=last_id))


def _latest_session_only(tracker: DialogueStateTracker) -> bool:
    """Whether nothing but the latest session is on the tracker (its start may be preceded by the
    `action_session_start` that began it)."""
    events = list(tracker.events)
    starts = [i for i, e in enumerate(events) if isinstance(e, SessionStarted)]
    if not starts:
        return True
    return all(isinstance(e, ActionExecuted) and e.action_name == ACTION_SESSION_START_NAME
               for e in events[:starts[-1]])
