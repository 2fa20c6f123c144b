"""Review: flagged groups become items; an admin's label becomes a training example in Rasa's format with where it
came from; duplicates of training or held-out examples are refused; two admins at once lose or double nothing."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import List

import pytest
import yaml
from rasa.shared.nlu.training_data.loading import load_data

from bot import nlu_data
from bot.config import PROJECT_ROOT
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.services import review
from bot.services.community import load_community
from bot.store.db import unit_of_work
from bot.store.models import DEFAULT_COMMUNITY, Resident, ReviewItem
from tests.helpers import community_db
from tests.integration.test_communities import LANXING
from tests.integration.test_transcripts import START, Conversation, _store

NOW = START + dt.timedelta(hours=3)


@pytest.fixture
def setup(database_url, tmp_path):
    factory = community_db(database_url)
    conversations = [
        Conversation("wx:1").says("楼道的灯又不亮啦谁来管管", "nlu_fallback", 0.2).bot("action_fallback"),
        Conversation("wx:2").says("楼道的灯又不亮啦，谁来管管！", "nlu_fallback", 0.25).bot("action_fallback"),
        Conversation("wx:3").says("我叫陈国强，吉利花园3号楼的电梯卡住了", "faq", 0.3).bot("utter_faq"),
        Conversation("wx:4").says("谢谢", "thank").bot("utter_you_are_welcome"),
    ]
    url = _store(conversations, tmp_path / "tracker.db")
    return factory, url, tmp_path / "reviewed"


def _decide(factory, item: review.ItemView, reviewed: Path, **kw):
    kw.setdefault("staff_key", "admin")
    return review.decide(factory, item.id, kw.pop("staff_key"), version=item.version, reviewed_dir=reviewed,
                         now=NOW, **kw)


def test_collected_groups_are_listed_worst_first_and_collected_once(setup) -> None:
    factory, url, _ = setup
    assert review.collect(factory, url, START - dt.timedelta(hours=1), now=NOW) == 2
    assert review.collect(factory, url, START - dt.timedelta(hours=1), now=NOW) == 0
    first, second = review.items(factory)
    assert first.count == 2 and first.suggestion == "nlu_fallback" and first.flags == {"fallback": 2}
    assert second.text == "我叫[姓名]，吉利花园3号楼的电梯卡住了" and second.suggestion == "faq"
    assert review.counts(factory) == {"pending": 2, "accepted": 0, "ignored": 0}


def test_an_accepted_label_is_written_in_rasas_format_with_its_source(setup) -> None:
    factory, url, reviewed = setup
    review.collect(factory, url, START - dt.timedelta(hours=1), now=NOW)
    lights, lift = review.items(factory)
    _decide(factory, lights, reviewed, action="accept", intent="request_repair",
            entities=[{"entity": "facility", "text": "楼道的灯"}])
    done = _decide(factory, lift, reviewed, action="accept", intent="request_repair",
                   entities=[{"entity": "community", "text": "吉利花园"}, {"entity": "building", "text": "3号楼"},
                             {"entity": "facility", "text": "电梯"}])
    assert done.status == "accepted" and done.reviewer == "社区管理员" and done.version == lift.version + 1
    file = reviewed / f"{NOW.date().isoformat()}.yml"
    raw = file.read_text(encoding="utf-8")
    assert "审核 #" in raw and "社区管理员" in raw and "对话记录" in raw and "陈国强" not in raw
    data = load_data(str(file))  # Rasa reads it
    examples = {m.get("text"): m for m in data.training_examples}
    lift_example = examples["我叫张某，吉利花园3号楼的电梯卡住了"]
    assert lift_example.get("intent") == "request_repair"
    assert [(e["entity"], e["value"]) for e in lift_example.get("entities")] == [
        ("community", "吉利花园"), ("building", "3号楼"), ("facility", "电梯")]
    assert nlu_data.examples(file) == [("楼道的灯又不亮啦谁来管管", "request_repair"),
                                       ("我叫张某，吉利花园3号楼的电梯卡住了", "request_repair")]
    assert review.items(factory) == [] and review.counts(factory)["accepted"] == 2


def test_bad_labels_are_refused_with_a_reason_and_change_nothing(setup, tmp_path) -> None:
    factory, url, reviewed = setup
    review.collect(factory, url, START - dt.timedelta(hours=1), now=NOW)
    item = review.items(factory)[0]
    with pytest.raises(InvalidInput) as unknown:
        _decide(factory, item, reviewed, action="accept", intent="order_pizza")
    assert unknown.value.data["field"] == "intent"
    with pytest.raises(InvalidInput):
        _decide(factory, item, reviewed, action="accept", intent="request_repair",
                entities=[{"entity": "facility", "text": "电梯"}])  # not in this message
    with pytest.raises(InvalidInput):
        _decide(factory, item, reviewed, action="accept", intent="request_repair",
                entities=[{"entity": "colour", "text": "灯"}])
    with pytest.raises(NotAllowed):
        _decide(factory, item, reviewed, action="accept", intent="request_repair", staff_key="wangjianguo")
    # A message already in a held-out file (or the training data) is refused, and the file is untouched.
    heldout = tmp_path / "heldout"
    heldout.mkdir()
    (heldout / "heldout.yml").write_text('version: "3.1"\nnlu:\n  - intent: request_repair\n    examples: |\n'
                                         "      - 楼道的灯又不亮啦，谁来管管\n", encoding="utf-8")
    before = (heldout / "heldout.yml").read_bytes()
    with pytest.raises(InvalidInput) as dup:
        _decide(factory, item, reviewed, action="accept", intent="request_repair", heldout_dir=heldout)
    assert "heldout.yml" in dup.value.data["duplicate_of"]
    assert (heldout / "heldout.yml").read_bytes() == before
    assert review.items(factory)[0].version == item.version and not reviewed.exists()


def test_a_training_example_cannot_come_back_as_a_review_item(setup) -> None:
    factory, _, reviewed = setup
    text, intent = nlu_data.examples(PROJECT_ROOT / "data" / "nlu")[0]
    with unit_of_work(factory) as s:
        row = ReviewItem(key="x" * 64, text=text, examples=[text], suggestion=intent, confidence=0.2, count=1,
                         flags={"fallback": 1}, source="test", status="pending", entities=[], version=1)
        s.add(row)
    item = [i for i in review.items(factory) if i.text == text][0]
    with pytest.raises(InvalidInput) as dup:
        _decide(factory, item, reviewed, action="accept", intent=intent)
    assert dup.value.data["duplicate_of"].startswith("data/nlu/")


def test_two_admins_deciding_at_once_neither_lose_nor_double_a_label(setup) -> None:
    factory, url, reviewed = setup
    review.collect(factory, url, START - dt.timedelta(hours=1), now=NOW)
    lights, lift = review.items(factory)
    outcomes: List[str] = []
    barrier = threading.Barrier(4)

    def act(item: review.ItemView, staff: str, intent: str) -> None:
        barrier.wait()
        try:
            _decide(factory, item, reviewed, action="accept", intent=intent, staff_key=staff)
            outcomes.append(f"{item.id}:{staff}")
        except review.Conflict:
            outcomes.append(f"{item.id}:conflict")

    threads = [threading.Thread(target=act, args=(lights, "admin", "request_repair")),
               threading.Thread(target=act, args=(lights, "gaohong", "report_leak")),
               threading.Thread(target=act, args=(lift, "admin", "request_repair")),
               threading.Thread(target=act, args=(lift, "gaohong", "request_repair"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for item in (lights, lift):
        mine = [o for o in outcomes if o.startswith(f"{item.id}:")]
        assert sorted(o.endswith("conflict") for o in mine) == [False, True], outcomes
    file = reviewed / f"{NOW.date().isoformat()}.yml"
    texts = [t for t, _ in nlu_data.examples(file)]
    assert sorted(texts) == sorted(["楼道的灯又不亮啦谁来管管", "我叫张某，吉利花园3号楼的电梯卡住了"])
    blocks = yaml.safe_load(file.read_text(encoding="utf-8"))["nlu"]
    assert len(blocks) == 2


def test_ignoring_takes_an_item_off_the_list_and_writes_nothing(setup) -> None:
    factory, url, reviewed = setup
    review.collect(factory, url, START - dt.timedelta(hours=1), now=NOW)
    item = review.items(factory)[0]
    assert _decide(factory, item, reviewed, action="ignore").status == "ignored"
    with pytest.raises(review.Conflict):
        _decide(factory, item, reviewed, action="accept", intent="request_repair")  # the stale version
    assert len(review.items(factory)) == 1 and not reviewed.exists()
    assert review.collect(factory, url, START - dt.timedelta(hours=1), now=NOW) == 0  # not asked again


def test_an_admin_reviews_only_their_own_communitys_residents_messages_the_street_office_all(
        database_url, tmp_path) -> None:
    factory = community_db(database_url)
    with unit_of_work(factory) as session:
        load_community(session, LANXING, NOW.date())
        session.add(Resident(sender_id="o_lanwan_1", community_key="lanxing", community="蓝湾花园"))
        session.add(Resident(sender_id="o_jili_1", community_key=DEFAULT_COMMUNITY, community="吉利花园"))
    first = [  # o_new_1 never gave an address: the first community (community.yml's) serves them
        Conversation("o_lanwan_1").says("蓝湾花园门口的路灯坏了好几天", "nlu_fallback", 0.2).bot("action_fallback")
        .says("你们到底管不管这个事情啊", "nlu_fallback", 0.2).bot("action_fallback"),
        Conversation("o_jili_1").says("楼道的灯又不亮啦谁来管管", "nlu_fallback", 0.2).bot("action_fallback"),
        Conversation("o_new_1").says("你们到底还管不管这个事情", "nlu_fallback", 0.25).bot("action_fallback"),
    ]
    review.collect(factory, _store(first, tmp_path / "tracker.db"), START - dt.timedelta(hours=1), now=NOW)

    def texts(staff_key: str) -> set:
        return {i.text for i in review.items(factory, staff_key=staff_key)}

    lamp, lights = "蓝湾花园门口的路灯坏了好几天", "楼道的灯又不亮啦谁来管管"
    both, both_new = "你们到底管不管这个事情啊", "你们到底还管不管这个事情"  # near-duplicates from two communities
    assert texts("lx-admin") == {lamp, both}
    assert texts("admin") == {lights, both_new}
    assert texts("street") == {lamp, lights, both, both_new}
    # each community's item holds its own residents' phrasings only, never the other community's
    assert [i.examples for i in review.items(factory, staff_key="lx-admin") if i.text == both] == [(both,)]
    assert [i.examples for i in review.items(factory, staff_key="admin") if i.text == both_new] == [(both_new,)]
    assert review.counts(factory, staff_key="lx-admin") == {"pending": 2, "accepted": 0, "ignored": 0}
    assert review.counts(factory) == {"pending": 4, "accepted": 0, "ignored": 0}  # no one named: the CLI's view
    with pytest.raises(NotAllowed):
        review.items(factory, staff_key="lx-duty")

    (item,) = [i for i in review.items(factory, staff_key="street") if i.text == lamp]
    with pytest.raises(NotFound):  # another community's item does not exist for the demo community's admin
        _decide(factory, item, tmp_path / "reviewed", staff_key="admin", action="ignore")
    assert review.items(factory, staff_key="street")[0].version == 1
    assert _decide(factory, item, tmp_path / "reviewed", staff_key="lx-admin", action="ignore").status == "ignored"

    # later each community's resident writes the other's phrasing: each becomes an item of the writer's own
    # community; 蓝星社区's decision on its item does not decide the demo community's, and the decided item stays
    # decided when its own resident writes it again
    later = [Conversation("o_lanwan_1", at=START + dt.timedelta(hours=1))
             .says(lights, "nlu_fallback", 0.2).bot("action_fallback").says(lamp, "nlu_fallback", 0.2)
             .bot("action_fallback"),
             Conversation("o_jili_1", at=START + dt.timedelta(hours=1))
             .says(lamp, "nlu_fallback", 0.2).bot("action_fallback")]
    assert review.collect(factory, _store(later, tmp_path / "tracker2.db"), START - dt.timedelta(hours=1),
                          now=NOW) == 2
    assert texts("lx-admin") == {lights, both}
    assert texts("admin") == {lights, both_new, lamp}
    assert review.items(factory, review.IGNORED, staff_key="admin") == []
    assert [i.text for i in review.items(factory, review.IGNORED, staff_key="lx-admin")] == [lamp]


def test_items_collected_before_they_knew_their_community_stay_with_every_admin(setup) -> None:
    factory, url, _ = setup
    review.collect(factory, url, START - dt.timedelta(hours=1), now=NOW)
    with unit_of_work(factory) as session:
        session.query(ReviewItem).update({"communities": []})
        load_community(session, LANXING, NOW.date())
    assert len(review.items(factory, staff_key="lx-admin")) == len(review.items(factory, staff_key="admin")) == 2


def test_an_item_kept_under_its_phrasing_alone_before_items_were_per_community_is_not_asked_again(setup) -> None:
    factory, url, reviewed = setup
    review.collect(factory, url, START - dt.timedelta(hours=1), now=NOW)
    with unit_of_work(factory) as session:  # as 0014 left them: keyed by the phrasing, one community recorded
        for row in session.query(ReviewItem):
            row.key = review._key(row.text)
    (item, _) = review.items(factory)
    _decide(factory, item, reviewed, action="ignore")
    assert review.collect(factory, url, START - dt.timedelta(hours=1), now=NOW) == 0
    assert len(review.items(factory)) == 1 and len(review.items(factory, review.IGNORED)) == 1
