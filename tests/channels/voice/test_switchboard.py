"""The SIP server end to end on loopback: calls run the demo bot; refusals, CANCEL, BYE, INFO, NOTIFY."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import select

from tests.channels.voice.fakes import RecordingSynthesizer
from tests.channels.voice.phone import Phone, offer_sdp
from warmline.bot import EchoBot
from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import BotLibrary, do_publish_bot
from warmline.bot.topic_bot import TopicBot
from warmline.channels.voice.calls import CANT_TRANSFER, TRANSFER_FAILED, Switchboard, VoiceSettings
from warmline.channels.voice.sip.message import SipResponse
from warmline.channels.voice.sip.transaction import Timers
from warmline.conversations.reads import list_activities
from warmline.demo import DEMO_BOT_FOLDER, seed_demo
from warmline.runtime import utc_now
from warmline.store import Database
from warmline.store.schema import ConversationRow, TransitionRow

MENU = "Thanks for calling Contoso. Press 1 for order status"
FAST = VoiceSettings(
    host="127.0.0.1",
    port=0,
    rtp_ports=(31000, 31999),
    dtmf_timeout=0.15,
    bye_timeout=1.0,
    transfer_timeout=2.0,
    timers=Timers(t1=0.05, t2=0.4, t4=0.5),
)


@dataclass
class Stage:
    """A switchboard serving the demo contact center, and what it said."""

    db: Database
    board: Switchboard
    speech: RecordingSynthesizer

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.board.port

    async def conversation(self) -> ConversationRow:
        async with self.db.reading() as session:
            rows = list(
                await session.scalars(select(ConversationRow).where(ConversationRow.channel == "voice"))
            )
        assert len(rows) == 1, rows
        return rows[0]

    async def transcript(self, conversation_id: str) -> list[tuple[str, str]]:
        async with self.db.reading() as session:
            stored = await list_activities(session, conversation_id)
        return [
            (s.role.value, s.activity.text or s.activity.name or "")
            for s in stored
            if s.activity.type in ("message", "event")
        ]

    async def until(self, check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
        """Wait (bounded) for an async predicate over the stored state."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not await check():
            if loop.time() > deadline:
                raise AssertionError(f"{check} did not hold within {within} s")
            await asyncio.sleep(0.02)  # the stored state has no event to await here


async def _stage(
    db: Database, settings: VoiceSettings = FAST, bot_files: dict[str, str] | None = None
) -> Stage:
    await seed_demo(db, "test-secret", utc_now(), with_bot=True)
    if bot_files is not None:
        async with db.transaction() as tx:
            await do_publish_bot(tx, "contoso-retail", bot_files, utc_now())
    library = BotLibrary(db)
    speech = RecordingSynthesizer(max_seconds=0.3)
    board = Switchboard(
        db=db,
        bus=db.bus,
        bot=TopicBot(db, library, fallback=EchoBot()),
        library=library,
        clock=utc_now,
        settings=settings,
        synthesizer=speech,
    )
    await board.start()
    return Stage(db, board, speech)


@pytest.fixture
async def stage(db: Database) -> AsyncIterator[Stage]:
    stage = await _stage(db)
    yield stage
    await stage.board.stop()


@pytest.fixture
async def phone(stage: Stage) -> AsyncIterator[Phone]:
    phone = await Phone.open(stage.address)
    yield phone
    phone.close()


def _transferring_bot(number: str) -> dict[str, str]:
    """The demo bot whose greeting transfers the call at once (no phone menu)."""
    files = read_bot_folder(DEMO_BOT_FOLDER)
    del files["topics/VoiceMenu.yaml"]
    files["topics/ConversationStart.yaml"] = TRANSFERRING_BOT.replace("{number}", number)
    return files


async def test_options_and_methods_we_do_not_serve(stage: Stage, phone: Phone) -> None:
    phone.options()
    ok = await phone.response("OPTIONS")
    assert ok.status == 200 and "INVITE" in (ok.headers.get("Allow") or "") and ok.to.tag
    phone.in_dialog("REGISTER")
    assert (await phone.response("REGISTER")).status == 405
    phone.in_dialog("FROB")
    assert (await phone.response("FROB")).status == 501
    phone.in_dialog("BYE")  # no such call
    assert (await phone.response("BYE")).status == 481


async def test_an_unknown_number_is_404(stage: Stage, phone: Phone) -> None:
    invite = phone.invite("15550999")
    trying = await phone.response("INVITE", 100)
    not_found = await phone.response("INVITE")
    assert (not_found.status, not_found.reason) == (404, "Not Found")
    assert trying.to.tag == not_found.to.tag
    phone.ack(invite, not_found)
    assert stage.board.calls == {}


async def test_a_bot_with_voice_disabled_is_refused_with_a_reason_and_a_log_line(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    files = {
        "bot.yaml": "name: Chat only\nsettings:\n  voiceEnabled: false\n",
        "topics/ConversationStart.yaml": TRANSFERRING_BOT.split("    - kind: TransferCall")[0],
    }
    stage = await _stage(db, bot_files=files)
    phone = await Phone.open(stage.address)
    try:
        with caplog.at_level(logging.WARNING, logger="warmline.voice"):
            phone.invite()
            refused = await phone.response("INVITE")
        assert (refused.status, refused.reason) == (403, "Voice Disabled For This Bot")
        assert any(
            "refused with 403" in r.getMessage() and "voiceEnabled: false" in r.getMessage()
            for r in caplog.records
        )
    finally:
        phone.close()
        await stage.board.stop()


async def test_no_common_codec_is_488(stage: Stage, phone: Phone) -> None:
    phone.invite(body=offer_sdp(phone.rtp_port, formats="18 101"))
    assert (await phone.response("INVITE")).status == 488


async def test_malformed_sip_gets_400_when_answerable_and_the_server_keeps_serving(
    stage: Stage, phone: Phone
) -> None:
    phone.send_raw(b"\x16\x03\x01 definitely not SIP \x00\xff")
    invite = phone.invite()  # the real one is sent too; cut a copy of it short:
    truncated = invite.to_bytes().replace(b"Content-Length: ", b"Content-Length: 9")
    phone.received.clear()
    await phone.response("INVITE")
    phone.call_id = "truncated@phone"
    phone.send_raw(truncated.replace(invite.call_id.encode(), b"truncated@phone"))
    bad = await phone.expect(lambda m: isinstance(m, SipResponse) and m.status == 400)
    assert isinstance(bad, SipResponse) and "Content-Length" in (bad.headers.get("Warning") or "")
    assert stage.board.counters["malformed"] == 2
    phone.options()
    assert (await phone.response("OPTIONS")).status == 200


async def test_a_call_runs_the_phone_menu_and_key_9_hangs_up(stage: Stage, phone: Phone) -> None:
    ok = await phone.call()
    assert ok.headers.get("Content-Type") == "application/sdp" and phone.answer is not None
    await stage.until(lambda: _said(stage, MENU))
    row = await stage.conversation()
    # The caller ID and the number dialled reach the bot (so it chose the phone menu).
    assert row.context["CustomerPhoneNumber"]["value"] == "14255550100"
    assert row.context["OrganizationPhoneNumber"]["value"] == "15550100"
    assert (row.bot_id, row.environment_id, row.workstream_id) == ("contoso-retail", "demo", "demo-voice")
    await _audio(phone, 5)
    assert phone.audio[0].marker and {p.payload_type for p in phone.audio} == {0}

    phone.in_dialog("INFO", b"Signal=9\r\nDuration=160\r\n", "application/dtmf-relay")
    assert (await phone.response("INFO")).status == 200
    bye = await phone.request("BYE")
    phone.reply(bye, 200, "OK")
    await stage.until(lambda: _state(stage, "closed"))
    transcript = await stage.transcript(row.id)
    assert ("customer", "9") in transcript
    assert ("bot", "Thanks for calling Contoso. Goodbye!") in transcript
    assert ("bot", "warmline.hang-up") in transcript
    assert stage.speech.said[-1] == "Thanks for calling Contoso. Goodbye!"
    assert stage.board.calls == {}


async def test_rtp_keys_barge_in_and_choose_the_menu_option(db: Database) -> None:
    stage = await _stage(db)
    stage.speech.max_seconds = 3.0  # a long greeting, to be cut short
    phone = await Phone.open(stage.address)
    try:
        await phone.call()
        await _audio(phone, 10)
        phone.press("1")
        await stage.until(lambda: _said(stage, "What's your order number?"))
        greeting = _talkspurts(phone)[0]
        assert 10 <= greeting < 140  # 3 s would be 150 packets: the key stopped it
        row = await stage.conversation()
        assert ("customer", "1") in await stage.transcript(row.id)
    finally:
        phone.close()
        await stage.board.stop()


async def test_cancel_while_ringing_ends_the_call_before_it_starts(db: Database) -> None:
    stage = await _stage(db, replace(FAST, ring_seconds=5))
    phone = await Phone.open(stage.address)
    try:
        invite = phone.invite()
        await phone.response("INVITE", 180)
        phone.cancel(invite)
        assert (await phone.response("CANCEL")).status == 200
        terminated = await phone.response("INVITE")
        assert terminated.status == 487
        phone.ack(invite, terminated)
        await stage.until(lambda: _no_calls(stage))
        async with stage.db.reading() as session:
            assert list(await session.scalars(select(ConversationRow))) == []
    finally:
        phone.close()
        await stage.board.stop()


async def test_a_caller_who_hangs_up_while_queued_leaves_the_queue(stage: Stage, phone: Phone) -> None:
    await phone.call()
    await stage.until(lambda: _said(stage, MENU))
    phone.in_dialog("INFO", b"2", "application/dtmf")
    await stage.until(lambda: _said(stage, "what do you need help with"))
    for key in "42#":
        phone.in_dialog("INFO", key.encode(), "application/dtmf")
    await stage.until(lambda: _state(stage, "waiting"))
    row = await stage.conversation()
    assert (row.queue_id, row.workstream_id) == ("voice", "demo-voice")
    phone.in_dialog("BYE")
    assert (await phone.response("BYE")).status == 200
    await stage.until(lambda: _state(stage, "closed"))
    async with stage.db.reading() as session:
        last = await session.scalar(
            select(TransitionRow)
            .where(TransitionRow.conversation_id == row.id)
            .order_by(TransitionRow.id.desc())
        )
    assert last is not None and last.reason == "the caller hung up while waiting in the queue"
    assert last.actor == "customer"


TRANSFERRING_BOT = """kind: AdaptiveDialog
beginDialog:
  kind: OnConversationStart
  id: main
  actions:
    - kind: SendActivity
      id: hello
      activity: Let me put you through.
    - kind: TransferCallToPhoneNumber
      id: away
      TargetPhoneNumber: "{number}"
"""


async def test_a_transfer_to_a_number_without_permission_is_refused_aloud_and_the_call_goes_on(
    db: Database,
) -> None:
    stage = await _stage(db, bot_files=_transferring_bot("15550123"))
    phone = await Phone.open(stage.address)
    try:
        await phone.call()
        await stage.until(lambda: _said(stage, CANT_TRANSFER))
        row = await stage.conversation()
        assert ("system", CANT_TRANSFER) in await stage.transcript(row.id)
        assert row.state == "open" and not [m for m in phone.received if getattr(m, "method", "") == "REFER"]
        phone.in_dialog("BYE")
        assert (await phone.response("BYE")).status == 200
    finally:
        phone.close()
        await stage.board.stop()


async def test_a_refer_the_target_refuses_is_said_and_the_call_goes_on(db: Database) -> None:
    stage = await _stage(db, bot_files=_transferring_bot("15550199"))
    phone = await Phone.open(stage.address)
    try:
        await phone.call()
        refer = await phone.request("REFER")
        assert refer.headers.get("Refer-To") == f"<sip:15550199@{phone.address[0]}:{phone.address[1]}>"
        phone.reply(refer, 202, "Accepted")
        phone.in_dialog(
            "NOTIFY",
            b"SIP/2.0 486 Busy Here\r\n",
            "message/sipfrag",
            Event="refer",
            Subscription_State="terminated;reason=noresource",
        )
        assert (await phone.response("NOTIFY")).status == 200
        await stage.until(lambda: _said(stage, TRANSFER_FAILED))
        assert (await stage.conversation()).state == "open"
    finally:
        phone.close()
        await stage.board.stop()


async def test_hold_and_resume_with_a_reinvite(stage: Stage, phone: Phone) -> None:
    await phone.call()
    hold = phone.in_dialog("INVITE", offer_sdp(phone.rtp_port, direction="sendonly"), "application/sdp")
    ok = await phone.response("INVITE")
    assert ok.status == 200 and b"a=recvonly" in ok.body
    phone.ack(hold, ok)
    call = next(iter(stage.board.calls.values()))
    assert call.sender is not None and call.sender.remote is None
    resume = phone.in_dialog("INVITE", offer_sdp(phone.rtp_port), "application/sdp")
    ok = await phone.response("INVITE")
    phone.ack(resume, ok)
    assert b"a=sendrecv" in ok.body and call.sender.remote == ("127.0.0.1", phone.rtp_port)


# --- helpers ------------------------------------------------------------------------------------------


async def _said(stage: Stage, words: str) -> bool:
    return any(words in text for text in stage.speech.said)


async def _state(stage: Stage, state: str) -> bool:
    return (await stage.conversation()).state == state


async def _no_calls(stage: Stage) -> bool:
    return not stage.board.calls


async def _audio(phone: Phone, packets: int, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while len(phone.audio) < packets:
        assert loop.time() < deadline, f"only {len(phone.audio)} RTP packets arrived"
        await asyncio.sleep(0.02)  # packets arrive on their own schedule (20 ms)


def _talkspurts(phone: Phone) -> list[int]:
    """Packets per talkspurt (each starts with the marker bit)."""
    spurts: list[int] = []
    for packet in phone.audio:
        if packet.marker or not spurts:
            spurts.append(0)
        spurts[-1] += 1
    return spurts
