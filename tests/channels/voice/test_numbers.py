"""Numbers: validated digits on voice workstreams, outbound permission, and what the bot sees."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from warmline.bot.topic_bot import turn_context
from warmline.channels.voice.actions import phone_context
from warmline.channels.voice.calls import caller_id, dialled_number, dtmf_from_info, sipfrag_status
from warmline.channels.voice.numbers import find_line, normalise_number, outbound_allowed
from warmline.channels.voice.sip.message import Headers, SipRequest
from warmline.conversations.model import Conversation, ConversationState, Customer
from warmline.demo import seed_demo
from warmline.routing.model import ContactCenter, Workstream
from warmline.runtime import utc_now
from warmline.store import Database


def _workstream(**fields: object) -> Workstream:
    return Workstream.model_validate(
        {"id": "phone", "name": "Phone", "type": "voice", "fallback_queue": "q", **fields}
    )


def test_numbers_are_digits_without_a_plus() -> None:
    assert _workstream(phone_numbers=["15550100", "442079460000"]).phone_numbers == [
        "15550100",
        "442079460000",
    ]
    for number, reason in [
        ("+15550100", "without '\\+'"),
        ("1 555 0100", "digits only"),
        ("999", "known country code"),
        ("1234567", "too short"),
        ("123456789012345678", "too long"),
    ]:
        with pytest.raises(ValidationError, match=reason):
            _workstream(phone_numbers=[number])


def test_only_voice_workstreams_have_numbers_and_each_number_has_one() -> None:
    with pytest.raises(ValidationError, match="only a voice workstream"):
        _workstream(type="messaging", phone_numbers=["15550100"])
    base = {"environment": "e", "queues": [], "workstreams": []}
    with pytest.raises(ValidationError, match="belongs to both 'a' and 'b'"):
        ContactCenter.model_validate(
            {
                **base,
                "workstreams": [
                    {
                        "id": i,
                        "name": i,
                        "type": "voice",
                        "fallback_queue": "q",
                        "phone_numbers": ["15550100"],
                    }
                    for i in ("a", "b")
                ],
            }
        )
    with pytest.raises(ValidationError, match="without '\\+'"):
        ContactCenter.model_validate({**base, "outbound_numbers": ["+15550199"]})


async def test_the_demo_number_leads_to_the_demo_bot_and_only_listed_numbers_may_be_called(
    db: Database,
) -> None:
    await seed_demo(db, "secret", utc_now(), with_bot=True)
    async with db.reading() as session:
        line = await find_line(session, "+1 555-0100")
        assert line is not None and (line.environment, line.workstream, line.bot_id) == (
            "demo",
            "demo-voice",
            "contoso-retail",
        )
        assert await find_line(session, "15550101") is None
        assert await outbound_allowed(session, "demo", "15550199")
        assert not await outbound_allowed(session, "demo", "15550123")
        assert not await outbound_allowed(session, "demo", "+15550199")


def _conversation(channel: str) -> Conversation:
    return Conversation(
        id="c1",
        channel=channel,
        state=ConversationState.OPEN,
        owner="bot",
        bot_only=False,
        customer=Customer(id="u"),
        widget_id=None,
        context=phone_context("14255550100", "15550100"),
    )


def test_only_a_call_gives_the_bot_phone_numbers() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    call = turn_context(_conversation("voice"), now)
    assert (call.customer_phone, call.organization_phone) == ("14255550100", "15550100")
    # A web chat whose host page sent the same names still has no phone numbers (the seed's test).
    chat = turn_context(_conversation("directline"), now)
    assert (chat.customer_phone, chat.organization_phone) == ("", "")


def _request(
    uri: str, headers: list[tuple[str, str]], body: bytes = b"", content_type: str = ""
) -> SipRequest:
    base = [
        ("Via", "SIP/2.0/UDP h;branch=z9hG4bKx"),
        ("Call-ID", "c"),
        ("CSeq", "1 INFO"),
        ("To", "<sip:x@h>"),
    ]
    if content_type:
        base.append(("Content-Type", content_type))
    return SipRequest(Headers(base + headers), body, method="INFO", uri=uri)


def test_numbers_and_keys_are_read_from_sip() -> None:
    assert normalise_number(" +1 (555) 010-0 ") == "15550100"
    invite = _request(
        "sip:+15550100@pbx;user=phone", [("From", '"Dana" <sip:+1-425-555-0100@carrier>;tag=1')]
    )
    assert (dialled_number(invite), caller_id(invite)) == ("15550100", "14255550100")
    asserted = _request(
        "sip:15550100@h", [("From", "<sip:anonymous@h>;tag=1"), ("P-Asserted-Identity", "<tel:+14255550199>")]
    )
    assert caller_id(asserted) == "14255550199"
    assert caller_id(_request("sip:15550100@h", [("From", "<sip:h>;tag=1")])) == "anonymous"
    relay = "application/dtmf-relay"
    assert dtmf_from_info(_request("sip:x@h", [], b"Signal=5\r\nDuration=160\r\n", relay)) == "5"
    assert dtmf_from_info(_request("sip:x@h", [], b"Signal= 11\r\n", relay)) == "#"
    assert dtmf_from_info(_request("sip:x@h", [], b"*", "application/dtmf")) == "*"
    assert dtmf_from_info(_request("sip:x@h", [], b"Duration=160", relay)) is None
    assert sipfrag_status(b"SIP/2.0 200 OK\r\n") == 200 and sipfrag_status(b"garbage") is None
