"""The post-conversation survey: asked when an agent ends a conversation, answered in the chat.

While a survey waits for its answer the conversation's owner is ``survey``, so the customer's next
message is the answer (recorded, thanked) rather than a turn for the bot or a note to nobody.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from warmline.activity import Activity, ActivityType, ChannelAccount
from warmline.bot.state import DialogState
from warmline.conversations.actions import do_append_activity
from warmline.conversations.model import Role
from warmline.routing.config import get_config
from warmline.store import Transaction
from warmline.store.schema import ConversationRow, DialogStateRow

SURVEY_OWNER = "survey"
SURVEY_EVENT = "warmline.survey.response"
QUESTION = "How satisfied were you with the help you got?"
SCALE = ("1", "2", "3", "4", "5")
THANKS = "Thank you for your feedback!"
CONSENT_VARIABLE = "Global.va_SurveyConsent"
SYSTEM = ChannelAccount(id="warmline-survey", name="Warmline", role="bot")
# Records stay in the log for agents and analytics; Direct Line never sends them to the customer.
AGENTS_ONLY = {"warmline": {"visibility": "agents"}}
_RATING = re.compile(r"^\s*([1-5])(?:\s*(?:/\s*5|stars?|out of 5))?\s*[.!]?\s*$", re.IGNORECASE)


async def _consented(session: AsyncSession, conversation_id: str) -> bool:
    row = await session.get(DialogStateRow, conversation_id)
    if row is None:
        return False
    return DialogState.from_json(dict(row.state)).globals.get(CONSENT_VARIABLE) is True


async def survey_due(session: AsyncSession, row: ConversationRow) -> bool:
    """Whether ending ``row`` asks the survey: the workstream wants it, and voice callers consented."""
    config = await get_config(session, row.environment_id or "")
    workstream = config.workstreams.get(row.workstream_id or "") if config else None
    if workstream is None or not workstream.post_conversation_survey:
        return False
    # On a call the survey needs the caller's consent, which the bot collects (seed §2.2).
    if row.channel == "voice":
        return await _consented(session, row.id)
    return True


async def do_ask_survey(tx: Transaction, conversation_id: str, now: datetime) -> bool:
    """Ask the survey if it is due; the conversation then belongs to the survey until answered."""
    row = await tx.session.get(ConversationRow, conversation_id, with_for_update=True)
    if row is None or not await survey_due(tx.session, row):
        return False
    await do_append_activity(
        tx,
        conversation_id,
        Activity(
            type="message",
            text=QUESTION,
            from_=SYSTEM,
            suggested_actions={
                "actions": [{"type": "imBack", "title": score, "value": score} for score in SCALE]
            },
        ),
        role=Role.SYSTEM,
        now=now,
    )
    row.owner = SURVEY_OWNER
    row.routing = {**(row.routing or {}), "survey": {"state": "asked", "asked_at": now.isoformat()}}
    return True


def read_rating(text: str) -> int | None:
    """A score of 1 to 5 from an answer such as ``5``, ``4/5`` or ``3 stars``; None for anything else."""
    found = _RATING.match(text)
    return int(found.group(1)) if found else None


async def do_record_survey_answer(
    tx: Transaction, conversation_id: str, answer: Activity, now: datetime
) -> dict[str, Any] | None:
    """Record the customer's answer, thank them, and end the chat; None if no survey was waiting."""
    row = await tx.session.get(ConversationRow, conversation_id, with_for_update=True)
    if row is None or row.owner != SURVEY_OWNER or answer.type != ActivityType.MESSAGE:
        return None
    text = (answer.text or "").strip()
    response: dict[str, Any] = {
        "state": "answered",
        "question": QUESTION,
        "rating": read_rating(text),
        "text": text,
        "answered_at": now.isoformat(),
    }
    routing = dict(row.routing or {})
    response["asked_at"] = (routing.get("survey") or {}).get("asked_at")
    row.routing = {**routing, "survey": response}
    row.owner = "nobody"
    for activity in (
        Activity(
            type="event", name=SURVEY_EVENT, value=response, from_=SYSTEM, channel_data=dict(AGENTS_ONLY)
        ),
        Activity(type="message", text=THANKS, from_=SYSTEM),
        Activity(type=ActivityType.END_OF_CONVERSATION.value, from_=SYSTEM),
    ):
        await do_append_activity(tx, conversation_id, activity, role=Role.SYSTEM, now=now)
    return response
