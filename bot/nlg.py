"""The Rasa server's responses, naming the resident's own community (issue 10).

endpoints.yml names it (`nlg: type: bot.nlg.CommunityNLG`). It is Rasa's response generator (the domain's
responses, slots filled in) with four more values for every response: `{community_name}`, `{office_phone}`,
`{office_hours}` and `{property_contacts}` (its estates' property phones) of the community that serves the
resident (bot/services/community.py `resident_community`: their estate's, or the one whose Official Account they
write to, or the deployment's first). So a resident of 蓝星社区 is greeted by 蓝星社区's assistant and given
蓝星社区's office hours and property phones, from one domain.yml.

The communities change only when `community load` runs, so their texts are kept for `TTL` seconds; which
community a resident belongs to is looked up (one indexed query, in a thread) and kept for `TTL` seconds too.
If the database cannot be read the texts of the community file are used, never a bare `{community_name}`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from typing import Any, Callable, Dict, Optional, Text, Tuple

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.services import community
from bot.store.db import make_engine, make_session_factory, unit_of_work

__all__ = ["CommunityNLG", "OfficeTexts"]

log = logging.getLogger(__name__)

TTL = 60.0
MAX_SENDERS = 10_000


class OfficeTexts:
    """The office texts for a sender, from the database, kept for `ttl` seconds."""

    def __init__(self, sessions: Callable[[], sessionmaker], fallback: Callable[[], Dict[str, str]],
                 ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._fallback = fallback
        self._ttl = ttl
        self._clock = clock
        self._communities: Tuple[float, Dict[str, Dict[str, str]]] = (float("-inf"), {})
        self._senders: "collections.OrderedDict[str, Tuple[float, str]]" = collections.OrderedDict()
        self._shipped: Optional[Dict[str, str]] = None
        self._lock = threading.Lock()  # for_sender runs in threads

    def kept(self, sender_id: str) -> Optional[Dict[str, str]]:
        """The texts for `sender_id` if both answers are kept and fresh (no database call: safe on the event loop)."""
        now = self._clock()
        at, texts = self._communities
        with self._lock:
            kept = self._senders.get(sender_id)
        if now - at >= self._ttl or kept is None or now - kept[0] >= self._ttl:
            return None
        return texts.get(kept[1])

    def for_sender(self, sender_id: str) -> Dict[str, str]:
        """{community_name, office_phone, office_hours, property_contacts} of the community serving `sender_id`."""
        now = self._clock()
        try:
            at, texts = self._communities
            if now - at >= self._ttl:
                with unit_of_work(self._sessions()) as session:
                    texts = community.office_texts(session)
                self._communities = (now, texts)
            key = self._key(sender_id, now)
        except SQLAlchemyError as exc:
            log.warning("community texts not read (%s); the community file's are used", type(exc).__name__)
            return self._file()
        return texts.get(key) or self._file()

    def _key(self, sender_id: str, now: float) -> str:
        with self._lock:
            kept = self._senders.get(sender_id)
        if kept is not None and now - kept[0] < self._ttl:
            return kept[1]
        with unit_of_work(self._sessions()) as session:
            key = community.resident_community(session, sender_id)
        with self._lock:
            self._senders[sender_id] = (now, key)
            self._senders.move_to_end(sender_id)
            while len(self._senders) > MAX_SENDERS:
                self._senders.popitem(last=False)
        return key

    def _file(self) -> Dict[str, str]:
        if self._shipped is None:
            self._shipped = self._fallback()
        return self._shipped


class CommunityNLG(TemplatedNaturalLanguageGenerator):
    """Rasa's templated responses with the resident's community's name, office phone and hours."""

    def __init__(self, endpoint_config: Any = None, domain: Any = None,
                 texts: Optional[OfficeTexts] = None) -> None:
        super().__init__(domain.responses if domain is not None else {})
        self._texts = texts or _from_settings()

    async def generate(self, utter_action: Text, tracker: Any, output_channel: Text,
                       **kwargs: Any) -> Optional[Dict[Text, Any]]:
        """The response, with the community's texts under the slots and the caller's values."""
        texts = self._texts.kept(tracker.sender_id) or await asyncio.to_thread(self._texts.for_sender,
                                                                              tracker.sender_id)
        return await super().generate(utter_action, tracker, output_channel, **{**texts, **kwargs})


def _from_settings() -> OfficeTexts:
    settings = Settings.from_env()
    factory: Dict[str, sessionmaker] = {}

    def sessions() -> sessionmaker:
        if "f" not in factory:
            factory["f"] = make_session_factory(make_engine(settings.database_url))
        return factory["f"]

    return OfficeTexts(sessions, lambda: community.shipped_office_texts(settings.community_dir))
