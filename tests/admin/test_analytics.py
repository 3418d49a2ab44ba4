"""Analytics: pure metrics, and numbers computed from real conversations through Direct Line."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.admin.factories import (
    ADMIN,
    AUTH,
    NOW,
    TOKEN,
    apply,
    contact_center,
    environment,
    publish_bot,
    register_app,
)
from tests.support import DatabaseUnderTest, LiveServer
from warmline.admin.actions import do_connect_bot
from warmline.analytics.metrics import (
    ConversationFacts,
    OfferFacts,
    Outcome,
    TransitionFacts,
    bot_metrics,
    outcome,
    percentile,
    queue_metrics,
)
from warmline.analytics.reads import read_analytics
from warmline.bot.publishing import do_attach_bot
from warmline.events import InProcessBus
from warmline.routing.actions import do_accept_offer, do_end_conversation, do_reject_offer, do_set_presence
from warmline.store import Database
from warmline.store.schema import ConversationRow, OfferRow, WidgetRow

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=NOW.tzinfo)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- pure metrics ----------------------------------------------------------------------------------


def test_outcomes_rates_topics_and_csat_from_facts() -> None:
    facts = [
        ConversationFacts("a", "bot", T0, customer_messages=3, ended_by_bot=True, csat=4),
        ConversationFacts("b", "bot", T0, customer_messages=2, csat=5),  # answered CSAT, then left
        ConversationFacts("c", "bot", T0, customer_messages=2, handoff_topics=("Returns",), survey_rating=2),
        ConversationFacts("d", "bot", T0, customer_messages=1, handoff_topics=(None, "Returns")),
        ConversationFacts("e", "bot", T0, customer_messages=1, handoff_topics=("Talk to a person",)),
        ConversationFacts("f", "bot", T0),
    ]
    assert [outcome(f) for f in facts] == [
        Outcome.RESOLVED,
        Outcome.RESOLVED,
        Outcome.ESCALATED,
        Outcome.ESCALATED,
        Outcome.ESCALATED,
        Outcome.ABANDONED,
    ]
    metrics = bot_metrics("bot", facts)
    assert (metrics.sessions, metrics.engaged, metrics.resolved, metrics.escalated, metrics.abandoned) == (
        6,
        5,
        2,
        3,
        1,
    )
    assert metrics.escalation_rate == 0.5 and metrics.abandon_rate == pytest.approx(1 / 6)
    # The topic that escalated is the last hand-off's; most escalations first.
    assert list(metrics.escalation_by_topic.items()) == [("Returns", 2), ("Talk to a person", 1)]
    assert metrics.csat_ratings == (4.0, 5.0, 2.0) and metrics.csat_average == pytest.approx(11 / 3)
    empty = bot_metrics("none", [])
    assert empty.sessions == 0 and empty.escalation_rate is None and empty.csat_average is None


def test_nearest_rank_percentile() -> None:
    assert percentile([], 90) is None
    assert percentile([7.0], 90) == 7.0
    assert percentile([float(s) for s in range(1, 11)], 90) == 9.0
    assert percentile([float(s) for s in range(1, 12)], 90) == 10.0


def test_waiting_and_handle_times_follow_transfers_and_count_rejected_and_timed_out_offers() -> None:
    offers = [
        OfferFacts("c1", "general", "rejected", _at(0), _at(5)),
        OfferFacts("c1", "general", "accepted", _at(5), _at(20)),
        OfferFacts("c2", "general", "expired", _at(0), _at(60)),
        OfferFacts("c2", "general", "accepted", _at(60), _at(70)),
        # c1 is transferred to billing after 100 s with ava; ben takes it there.
        OfferFacts("c1", "billing", "accepted", _at(130), _at(140)),
        OfferFacts("c3", "general", "pending", _at(0), None),
    ]
    transitions = [
        TransitionFacts("c1", _at(0), "waiting"),
        TransitionFacts("c1", _at(120), "waiting"),
        TransitionFacts("c1", _at(200), "wrap-up"),
        TransitionFacts("c2", _at(0), "waiting"),
        TransitionFacts("c2", _at(100), "wrap-up"),
    ]
    general, billing = queue_metrics(offers, transitions)[::-1]
    assert (general.queue, general.offers, general.accepted, general.rejected, general.timed_out) == (
        "general",
        5,
        2,
        1,
        1,
    )
    assert general.waits == (20.0, 70.0) and general.average_wait == 45.0 and general.p90_wait == 70.0
    # c1's first agent handled it until the transfer's acceptance, not counted as a wrap-up; c2: 30 s.
    assert general.handles == (30.0,)
    assert (billing.queue, billing.waits, billing.handles) == ("billing", (20.0,), (60.0,))
    # Without a waiting move the conversation's queued_at is the start.
    [only] = queue_metrics([OfferFacts("c9", "q", "accepted", _at(0), _at(42))], [], {"c9": _at(0)})
    assert only.waits == (42.0,)


# --- numbers from real conversations ---------------------------------------------------------------


async def _prepare(database: DatabaseUnderTest) -> None:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        await apply(db, contact_center("env1", "retail"))
        await environment(db, "env1")
        await publish_bot(db, "retail", "env1")
        async with db.transaction() as tx:
            await do_attach_bot(tx, "demo", "retail")
            widget = await tx.session.get(WidgetRow, "demo")
            assert widget is not None
            widget.target_workstream = "env1/chat"
        for agent in ("ava", "ben"):
            async with db.transaction() as tx:
                await do_set_presence(tx, "env1", agent, "Available", NOW)
        app_id = await register_app(db)
        async with db.transaction() as tx:
            await do_connect_bot(tx, ADMIN, "retail", "env1", app_id, NOW)
    finally:
        await db.dispose()


@pytest.fixture
def server(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[LiveServer]:
    asyncio.run(_prepare(database))
    settings = database.settings(upload_dir=tmp_path / "uploads", routing_worker=False, admin_token=TOKEN)
    live = LiveServer(settings).start()
    yield live
    live.stop()


class Customer:
    """A Web Chat-like customer talking over Direct Line."""

    def __init__(self, client: httpx.AsyncClient, server: LiveServer) -> None:
        self.client, self.server = client, server
        self.conversation: dict[str, Any] = {}

    async def start(self) -> str:
        session = await self.client.post(f"{self.server.url}/widgets/demo/conversations", json={})
        assert session.status_code == 201, session.text
        started = await self.client.post(
            f"{self.server.domain}/conversations",
            headers={"Authorization": f"Bearer {session.json()['token']}"},
        )
        self.conversation = started.json()
        return str(self.conversation["conversationId"])

    async def say(self, text: str) -> None:
        response = await self.client.post(
            f"{self.server.domain}/conversations/{self.conversation['conversationId']}/activities",
            headers={"Authorization": f"Bearer {self.conversation['token']}"},
            json={"type": "message", "text": text},
        )
        assert response.status_code == 200, response.text


async def _offers(db: Database, conversation_id: str) -> list[OfferRow]:
    async with db.reading() as session:
        return list(
            await session.scalars(
                select(OfferRow)
                .where(OfferRow.conversation_id == conversation_id)
                .order_by(OfferRow.created_at)
            )
        )


async def _four_conversations(server: LiveServer, db: Database) -> None:
    """Two resolved with CSAT 4 and 5, one escalated (rejected once, accepted after 30 s, handled 120 s),
    one abandoned without a word."""
    async with httpx.AsyncClient(timeout=30) as client:
        for rating in ("4", "5"):
            customer = Customer(client, server)
            await customer.start()
            await customer.say("when are you open?")
            await customer.say("no thanks")
            await customer.say(rating)
        escalated = Customer(client, server)
        conversation_id = await escalated.start()
        await escalated.say("talk to a person")
        await escalated.say("my refund never arrived")
        await Customer(client, server).start()

    async with db.reading() as session:
        row = await session.get(ConversationRow, conversation_id)
    assert row is not None and row.queued_at is not None and row.state == "waiting"
    queued = row.queued_at
    [first] = await _offers(db, conversation_id)
    async with db.transaction() as tx:
        await do_reject_offer(tx, first.id, first.agent_id, queued + timedelta(seconds=10))
    second = next(o for o in await _offers(db, conversation_id) if o.state == "pending")
    assert second.agent_id != first.agent_id
    accepted = queued + timedelta(seconds=30)
    async with db.transaction() as tx:
        await do_accept_offer(tx, second.id, second.agent_id, accepted)
    async with db.transaction() as tx:
        await do_end_conversation(tx, conversation_id, second.agent_id, accepted + timedelta(seconds=120))


async def test_analytics_of_four_real_conversations(server: LiveServer, database: DatabaseUnderTest) -> None:
    db = Database(database.url, InProcessBus(), schema=database.schema)
    try:
        await _four_conversations(server, db)
        async with db.reading() as session:
            report = await read_analytics(session, "env1", "retail")
    finally:
        await db.dispose()
    total = report.total
    assert (total.sessions, total.engaged, total.resolved, total.escalated, total.abandoned) == (
        4,
        3,
        2,
        1,
        1,
    )
    assert (total.engagement_rate, total.resolution_rate, total.escalation_rate, total.abandon_rate) == (
        0.75,
        0.5,
        0.25,
        0.25,
    )
    assert total.escalation_by_topic == {"Talk to a person": 1}
    assert total.csat_ratings == (4.0, 5.0) or total.csat_ratings == (5.0, 4.0)
    assert total.csat_average == 4.5
    assert report.queues is not None
    [general] = report.queues
    assert (general.queue, general.offers, general.accepted, general.rejected, general.timed_out) == (
        "general",
        2,
        1,
        1,
        0,
    )
    assert (general.average_wait, general.p90_wait, general.average_handle) == (30.0, 30.0, 120.0)

    # The same numbers over the API, on the page (with its charts) and in the CSV.
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as client:
        data = (
            await client.get("/api/admin/analytics", params={"environment": "env1", "bot": "retail"})
        ).json()
        assert data["total"]["escalationRate"] == 0.25 and data["total"]["csatAverage"] == 4.5
        assert data["queues"][0]["averageWaitSeconds"] == 30.0 and data["omnichannelAnalytics"] is True

        page = await client.get("/admin/analytics", params={"environment": "env1", "bot": "retail"})
        assert page.status_code == 200
        html = page.text
        for element, value in [
            ("m-sessions", "4"),
            ("m-engagement", "75 %"),
            ("m-resolution", "50 %"),
            ("m-escalation", "25 %"),
            ("m-abandon", "25 %"),
            ("m-csat", "4.50"),
        ]:
            assert re.search(rf'id="{element}">{re.escape(value)}<', html), element
        assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in html
        assert 'data-label="Escalation" data-value="0.25"' in html
        assert 'data-label="Talk to a person" data-value="1"' in html
        assert 'data-label="general" data-value="30"' in html  # average wait chart
        assert '<td class="wait">30 s</td>' in html and '<td class="handle">2 min 00 s</td>' in html
        assert "<script" not in html  # charts are drawn on the server

        exported = await client.get("/admin/analytics.csv", params={"environment": "env1", "bot": "retail"})
        assert exported.headers["content-type"].startswith("text/csv")
        rows = {(r[0], r[1], r[2]): r[3] for r in csv.reader(io.StringIO(exported.text))}
        assert rows[("bots", "retail", "sessions")] == "4"
        assert rows[("bots", "retail", "escalationRate")] == "0.25"
        assert rows[("bots", "retail", "escalationByTopic:Talk to a person")] == "1"
        assert rows[("bots", "retail", "csatAverage")] == "4.5"
        assert rows[("queue", "general", "rejected")] == "1"
        assert rows[("queue", "general", "averageHandleSeconds")] == "120"


async def test_omnichannel_analytics_need_the_bot_and_the_omnichannel_in_one_environment(
    db: Database,
) -> None:
    await environment(db, "bots")
    await environment(db, "contact-center")
    await publish_bot(db, "retail", "bots")
    app_id = await register_app(db)
    async with db.transaction() as tx:
        await do_connect_bot(tx, ADMIN, "retail", "contact-center", app_id, NOW)
    async with db.reading() as session:
        report = await read_analytics(session, "bots", "retail")
        whole = await read_analytics(session, "bots")
    assert report.queues is None
    assert report.notes == [
        "Omnichannel analytics for bot 'retail' need the bot and the omnichannel in the same environment: "
        "the bot is in 'bots', its omnichannel in 'contact-center'. Only the bot's own metrics are shown for it."
    ]
    assert whole.queues == [] and whole.notes == report.notes
