"""Calls: the SIP user agent that answers numbers and runs each call as a Warmline conversation.

``Switchboard`` is the UDP endpoint and transaction user: it answers INVITEs to configured numbers
(404 for others, 403 when the bot's voice is off), OPTIONS, CANCEL, BYE, INFO (DTMF) and the
NOTIFYs of a transfer, and never lets one bad datagram stop it. ``Call`` is one answered call: the
caller's keys and words become customer messages; the bot's messages are spoken as they are stored
(the call listens to its conversation's events, like a Direct Line stream), and the bot's
telephony outcomes hang up (BYE) or transfer (REFER, RFC 3515). Each call owns its dialog and
media, so a second leg — an agent's phone — can be placed and bridged to it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import sys
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from warmline.activity import Activity, ChannelAccount
from warmline.bot import Bot
from warmline.bot.publishing import BotLibrary
from warmline.channels.voice import g711, sdp
from warmline.channels.voice.actions import do_end_call, do_start_call, do_tell_caller
from warmline.channels.voice.numbers import (
    CallRefused,
    VoiceLine,
    answering_bot,
    find_line,
    normalise_number,
    outbound_allowed,
)
from warmline.channels.voice.rtp import (
    Address,
    DtmfDecoder,
    JitterBuffer,
    MediaClock,
    NoPortsLeft,
    Playback,
    PortPool,
    RtpPacket,
    RtpReceiver,
    RtpSender,
)
from warmline.channels.voice.sip.dialog import USER_AGENT, Dialog
from warmline.channels.voice.sip.message import (
    NameAddr,
    ParseError,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    new_tag,
    parse_message,
    response_from_headers,
    response_to,
)
from warmline.channels.voice.sip.transaction import (
    InviteServerTransaction,
    Scheduler,
    ServerTransaction,
    State,
    Timers,
    TransactionLayer,
    TransactionTimeout,
    response_destination,
)
from warmline.channels.voice.stt import KeypadOnly, Recognition, RecognitionStream, SpeechRecognizer
from warmline.channels.voice.tts import SilentSynthesizer, SpeechSynthesizer, speech_text
from warmline.conversations.actions import ACTIVITY_ADDED
from warmline.conversations.model import Conversation
from warmline.events import Bus, Subscription
from warmline.handoff.delivery import do_deliver_customer_activity, do_start_with_bot
from warmline.routing.actions import CONVERSATION_CLOSED, CONVERSATION_ENDED
from warmline.store import Database

log = logging.getLogger("warmline.voice")

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY"
ACCEPT = "application/sdp, application/dtmf-relay, application/dtmf, message/sipfrag"
NOT_HERE = ("REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "UPDATE", "PRACK", "REFER")
CANT_TRANSFER = "Sorry, I can't transfer calls to that number."
TRANSFER_FAILED = "Sorry, the transfer didn't go through."
HANG_UP_EVENT = "warmline.hang-up"
TRANSFER_EVENT = "warmline.transfer-to-phone-number"
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class VoiceSettings:
    """Where SIP and RTP listen and how calls behave."""

    host: str = "127.0.0.1"
    port: int = 5060
    public_host: str | None = None
    rtp_ports: tuple[int, int] = (20000, 20999)
    trunk: str | None = None
    dtmf_timeout: float = 0.8
    ring_seconds: float = 0.0
    transfer_timeout: float = 32.0
    bye_timeout: float = 4.0
    max_calls: int = 500
    timers: Timers = field(default_factory=Timers)

    @property
    def advertised_host(self) -> str:
        """The address put in Via, Contact and SDP (``public_host``, else the listening address)."""
        return self.public_host or self.host


class CallState(StrEnum):
    """Where a call is."""

    RINGING = "ringing"
    ANSWERED = "answered"  # 200 sent, ACK awaited
    CONNECTED = "connected"
    ENDING = "ending"
    ENDED = "ended"


@dataclass
class Say:
    """Words to speak; barge-in skips them unless they are uninterruptible."""

    text: str
    interruptible: bool = True
    cancelled: bool = False
    playback: Playback | None = None

    def cancel(self) -> None:
        """Skip these words (or stop them mid-way)."""
        self.cancelled = True
        if self.playback is not None:
            self.playback.stop()


@dataclass(frozen=True)
class HangUp:
    """End the call once everything before it has been said."""

    actor: str
    reason: str


@dataclass(frozen=True)
class Transfer:
    """Blind-transfer the call once everything before it has been said."""

    number: str


Item = Say | HangUp | Transfer


def dialled_number(request: SipRequest) -> str:
    """The number called: the Request-URI's user part (the To header's when the URI has none)."""
    try:
        uri = SipUri.parse(request.uri)
        return normalise_number(uri.user or SipUri.parse(request.to.uri).user)
    except ParseError:
        return ""


def caller_id(request: SipRequest) -> str:
    """The caller's number: P-Asserted-Identity (RFC 3325) when present, else From's user part."""
    for header in ("P-Asserted-Identity", "From"):
        value = request.headers.get(header)
        if not value:
            continue
        try:
            user = SipUri.parse(NameAddr.parse(value).uri).user
        except ParseError:
            continue
        if user:
            return normalise_number(user) or user
    return "anonymous"


def dtmf_from_info(request: SipRequest) -> str | None:
    """A key from an INFO body: ``application/dtmf-relay`` (``Signal=5``) or ``application/dtmf``."""
    body = request.body.decode("utf-8", errors="replace")
    if request.content_type == "application/dtmf-relay":
        for line in body.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                body = value
                break
        else:
            return None
    key = body.strip().upper()
    if key == "10":
        key = "*"
    elif key == "11":
        key = "#"
    return key if len(key) == 1 and key in "0123456789*#ABCD" else None


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a ``message/sipfrag`` body (RFC 3420), e.g. ``SIP/2.0 200 OK`` → 200."""
    first = body.decode("utf-8", errors="replace").strip().splitlines()[:1]
    parts = first[0].split() if first else []
    return int(parts[1]) if len(parts) >= 2 and parts[0].startswith("SIP/") and parts[1].isdigit() else None


class Call:
    """One call: its INVITE, dialog, RTP stream, conversation and what is still to be said."""

    def __init__(self, board: Switchboard, invite: InviteServerTransaction, caller: str, number: str) -> None:
        self.board = board
        self.invite = invite
        self.caller = caller
        self.number = number
        self.call_id = invite.request.call_id
        self.conversation_id = new_conversation_id()
        self.local_tag = new_tag()
        self.state = CallState.RINGING
        self.cancelled = asyncio.Event()
        self.line: VoiceLine | None = None
        self.conversation: Conversation | None = None
        self.locale = "en-US"
        self.dialog: Dialog | None = None
        self.negotiated: sdp.Negotiated | None = None
        self.local_sdp: sdp.SessionDescription | None = None
        self.sock_port: int | None = None
        self.rtp_socket: socket.socket | None = None
        self.sender: RtpSender | None = None
        self.rtp_transport: asyncio.DatagramTransport | None = None
        self.subscription: Subscription | None = None
        self.listener: RecognitionStream | None = None
        self.dtmf = DtmfDecoder()
        self.jitter = JitterBuffer()
        self.digits: list[str] = []
        self._digit_timer: asyncio.TimerHandle | None = None
        self.outbox: deque[Item] = deque()
        self._wake = asyncio.Event()
        self._saying: Say | None = None
        self._deliveries = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._transfer: asyncio.Future[int] | None = None

    # --- set-up ------------------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a coroutine for this call; its failure is logged, never lost."""
        task = asyncio.create_task(coroutine, name=f"call {self.call_id}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s: %s failed", self.call_id, task.get_name(), exc_info=task.exception())

    def respond(self, status: int, reason: str, **options: Any) -> None:
        """Answer the INVITE (provisional or final)."""
        response = response_to(self.invite.request, status, reason, to_tag=self.local_tag, **options)
        response.headers.add("User-Agent", USER_AGENT)
        self.board.layer.respond(self.invite, response)

    async def answer(self) -> None:
        """Answer the INVITE; a failure is a 500 and a log line, never a call left hanging."""
        try:
            await self._answer()
        except Exception:
            log.exception(
                "call %s from %s to %s could not be answered", self.call_id, self.caller, self.number
            )
            if self.invite.state is State.PROCEEDING:
                self.respond(500, "Server Internal Error")
            await self.finish("system", "the server failed to answer")

    async def _answer(self) -> None:
        board = self.board
        request = self.invite.request
        try:
            async with board.db.reading() as session:
                self.line = await find_line(session, self.number)
                if self.line is None:
                    raise CallRefused(404, "Not Found", "no voice workstream has this number")
                bot = await answering_bot(session, board.library, self.line)
            self.locale = (await board.library.definition(*bot)).settings.language
            offer = self._offer(request)
            if len(board.calls) > board.settings.max_calls:
                raise CallRefused(486, "Busy Here", f"{board.settings.max_calls} calls in progress")
            try:
                sock, port = board.ports.open()
            except NoPortsLeft as error:
                raise CallRefused(503, "Service Unavailable", str(error)) from None
            self.sock_port, self.rtp_socket = port, sock
            host = board.settings.advertised_host
            session_id = secrets.randbelow(2**31)
            if offer is None:  # late offer (§13.2.1): we offer in the 200, the answer comes in the ACK
                self.local_sdp = sdp.offer(host, port, session_id)
            else:
                try:
                    self.local_sdp, self.negotiated = sdp.answer(offer, host, port, session_id)
                except sdp.NotAcceptable as error:
                    sock.close()
                    raise CallRefused(488, "Not Acceptable Here", str(error)) from None
            loop = asyncio.get_running_loop()
            self.rtp_transport, _ = await loop.create_datagram_endpoint(
                lambda: RtpReceiver(self._on_rtp), sock=sock
            )
        except CallRefused as refused:
            level = logging.INFO if refused.status == 404 else logging.WARNING
            log.log(
                level,
                "call %s from %s to %s refused with %s %s: %s",
                self.call_id,
                self.caller,
                self.number,
                refused.status,
                refused.reason,
                refused.why,
            )
            self.respond(refused.status, refused.reason)
            self.board.forget(self)
            return
        if board.settings.ring_seconds > 0:
            self.respond(180, "Ringing")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancelled.wait(), board.settings.ring_seconds)
        if self.cancelled.is_set():
            await self.finish("customer", "the caller cancelled before the answer")
            return
        self.subscription = board.bus.subscribe(self.conversation_id)
        assert self.line is not None
        async with board.db.transaction() as tx:
            self.conversation = await do_start_call(
                tx,
                conversation_id=self.conversation_id,
                line=self.line,
                caller=self.caller,
                bot=bot,
                now=board.clock(),
            )
        if self.cancelled.is_set():
            await self.finish("customer", "the caller cancelled before the answer")
            return
        contact = f"sip:{self.number}@{_hostport(board.settings.advertised_host, board.port)}"
        self.dialog = Dialog.as_uas(request, self.local_tag, contact)
        assert self.local_sdp is not None
        self.state = CallState.ANSWERED
        self.respond(
            200,
            "OK",
            headers=[
                ("Contact", f"<{contact}>"),
                ("Allow", ALLOW),
                ("Supported", "replaces"),
                ("Content-Type", "application/sdp"),
            ],
            body=self.local_sdp.to_bytes(),
        )
        log.info(
            "call %s from %s to %s answered: conversation %s",
            self.call_id,
            self.caller,
            self.number,
            self.conversation_id,
        )

    def _offer(self, request: SipRequest) -> sdp.SessionDescription | None:
        if not request.body:
            return None
        if request.content_type != "application/sdp":
            raise CallRefused(415, "Unsupported Media Type", f"body is {request.content_type or 'untyped'}")
        try:
            return sdp.SessionDescription.parse(request.body)
        except sdp.SdpError as error:
            raise CallRefused(400, "Bad SDP", str(error)) from None

    def acknowledged(self, ack: SipRequest) -> None:
        """The ACK for our 200 arrived: media and the bot start."""
        if self.state is not CallState.ANSWERED:
            return
        if self.negotiated is None:
            try:
                self.negotiated = sdp.accept_answer(sdp.SessionDescription.parse(ack.body))
            except (sdp.SdpError, sdp.NotAcceptable) as error:
                log.warning("call %s: unusable SDP answer in the ACK (%s); hanging up", self.call_id, error)
                self.spawn(self.hang_up("system", "no usable media"), "hang up")
                return
        self.state = CallState.CONNECTED
        self._start_media()
        self.spawn(self._speak(), "speak")
        self.spawn(self._listen(), "listen")
        self.spawn(self._greet(), "greet")

    def _start_media(self) -> None:
        assert self.negotiated is not None and self.rtp_socket is not None
        negotiated = self.negotiated
        self.sender = RtpSender(
            # The socket itself, not the transport: the clock thread sends with a plain sendto().
            self.rtp_socket,
            negotiated.remote if negotiated.sends else None,
            negotiated.codec.payload_type,
            "alaw" if negotiated.codec.name == "PCMA" else "ulaw",
        )
        self.board.media.add(self.sender)
        self.listener = self.board.recognizer.open(
            locale=self.locale, on_speech=self._on_speech, on_result=self._on_recognised
        )

    async def _greet(self) -> None:
        assert self.conversation is not None
        async with self._deliveries:
            await do_start_with_bot(self.board.db, self.board.bot, self.conversation, self.board.clock)

    # --- what the bot says -------------------------------------------------------------------

    async def _listen(self) -> None:
        """Follow the conversation's events: speak new messages, act on telephony outcomes."""
        assert self.subscription is not None
        while True:
            event = await self.subscription.get()
            if event.name == ACTIVITY_ADDED:
                self._on_activity(Activity.model_validate(event.data["activity"]))
            elif event.name in (CONVERSATION_CLOSED, CONVERSATION_ENDED):
                self._queue(HangUp("system", "the conversation ended"))

    def _on_activity(self, activity: Activity) -> None:
        if activity.from_ is not None and activity.from_.role == "user":
            return
        warmline = (activity.channel_data or {}).get("warmline") or {}
        if warmline.get("visibility") == "agents":
            return
        if activity.type == "message":
            text = speech_text(activity, self.locale)
            if text:
                self._queue(Say(text, interruptible=not warmline.get("uninterruptible")))
        elif activity.type == "event" and activity.name == HANG_UP_EVENT:
            self._queue(HangUp("bot", "the bot hung up"))
        elif activity.type == "event" and activity.name == TRANSFER_EVENT:
            value = activity.value if isinstance(activity.value, dict) else {}
            self._queue(Transfer(str(value.get("phoneNumber") or "")))

    def _queue(self, item: Item) -> None:
        self.outbox.append(item)
        self._wake.set()

    async def _speak(self) -> None:
        """Say, hang up and transfer in the order the conversation asked for them."""
        while self.state is CallState.CONNECTED:
            if not self.outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self.outbox.popleft()
            if isinstance(item, Say):
                await self._say(item)
            elif isinstance(item, HangUp):
                await self.hang_up(item.actor, item.reason)
            else:
                await self._blind_transfer(item.number)

    async def _say(self, item: Say) -> None:
        if item.cancelled or self.sender is None:
            return
        self._saying = item
        try:
            audio = await self.board.synthesizer.synthesize(item.text, locale=self.locale)
        except Exception:
            log.exception("call %s: speech synthesis failed for %r", self.call_id, item.text[:80])
            self._saying = None
            return
        if item.cancelled or self.state is not CallState.CONNECTED:
            self._saying = None
            return
        item.playback = Playback(audio, asyncio.get_running_loop(), interruptible=item.interruptible)
        self.sender.play(item.playback)
        await item.playback.done
        self._saying = None

    # --- what the caller does ----------------------------------------------------------------

    def barge_in(self) -> bool:
        """Caller input stops the prompt and drops queued ones; False while an uninterruptible plays."""
        current = self._saying
        if current is not None and not current.interruptible:
            return False
        if current is not None:
            current.cancel()
        kept = [i for i in self.outbox if not (isinstance(i, Say) and i.interruptible)]
        for item in self.outbox:
            if isinstance(item, Say) and item.interruptible:
                item.cancel()
        self.outbox.clear()
        self.outbox.extend(kept)
        return True

    def on_key(self, key: str) -> None:
        """A DTMF key (RTP or INFO): barge in, then collect keys until '#' or a pause."""
        if self.state is not CallState.CONNECTED:
            return
        if not self.barge_in():
            log.info("call %s: key %s ignored during an uninterruptible message", self.call_id, key)
            return
        if self._digit_timer is not None:
            self._digit_timer.cancel()
        if key == "#" and self.digits:
            self._send_keys()
            return
        self.digits.append(key)
        self._digit_timer = asyncio.get_running_loop().call_later(
            self.board.settings.dtmf_timeout, self._send_keys
        )

    def _send_keys(self) -> None:
        self._digit_timer = None
        keys = "".join(self.digits)
        self.digits.clear()
        if keys:
            self.spawn(self._deliver(keys, {"dtmf": keys}), "deliver keys")

    def _on_speech(self) -> None:
        if self.state is CallState.CONNECTED:
            self.barge_in()

    def _on_recognised(self, result: Recognition) -> None:
        if self.state is CallState.CONNECTED and result.text.strip() and self.barge_in():
            self.spawn(
                self._deliver(result.text.strip(), {"speech": {"confidence": result.confidence}}),
                "deliver speech",
            )

    async def _deliver(self, text: str, details: dict[str, Any]) -> None:
        assert self.conversation is not None
        activity = Activity(
            type="message",
            text=text,
            from_=ChannelAccount(id=self.conversation.customer.id, name=self.caller, role="user"),
            channel_data={"warmline": details},
            locale=self.locale,
        )
        async with self._deliveries:
            if self.state is CallState.CONNECTED:
                await do_deliver_customer_activity(
                    self.board.db, self.board.bot, self.conversation, activity, self.board.clock
                )

    def _on_rtp(self, packet: RtpPacket, source: Address) -> None:
        negotiated = self.negotiated
        if negotiated is None or self.state is not CallState.CONNECTED:
            return
        if packet.payload_type == negotiated.dtmf_payload_type:
            key = self.dtmf.push(packet)
            if key is not None:
                self.on_key(key)
        elif packet.payload_type == negotiated.codec.payload_type and self.listener is not None:
            law = "alaw" if negotiated.codec.name == "PCMA" else "ulaw"
            for ready in self.jitter.push(packet):
                self.listener.feed(g711.decode(ready.payload, law))

    # --- in-dialog requests ------------------------------------------------------------------

    def reinvite(self, transaction: ServerTransaction) -> None:
        """A re-INVITE (hold, resume, a new address): answer with our stream, follow the peer."""
        request = transaction.request
        assert self.dialog is not None and self.local_sdp is not None and self.sock_port is not None
        try:
            offer = sdp.SessionDescription.parse(request.body) if request.body else None
            if offer is None:
                answer_sdp, negotiated = self.local_sdp, self.negotiated
            else:
                answer_sdp, negotiated = sdp.answer(
                    offer,
                    self.board.settings.advertised_host,
                    self.sock_port,
                    self.local_sdp.session_id,
                    self.local_sdp.session_version + 1,
                )
        except (sdp.SdpError, sdp.NotAcceptable):
            self.board.reply(transaction, 488, "Not Acceptable Here")
            return
        self.dialog.update_target(request)
        self.local_sdp = answer_sdp
        if negotiated is not None and self.sender is not None:
            self.negotiated = negotiated
            self.sender.remote = negotiated.remote if negotiated.sends else None
        self.board.reply(
            transaction,
            200,
            "OK",
            headers=[("Contact", f"<{self.dialog.local_contact}>"), ("Content-Type", "application/sdp")],
            body=answer_sdp.to_bytes(),
        )

    def refer_progress(self, status: int) -> None:
        """A NOTIFY told how the transfer target answered."""
        if status >= 200 and self._transfer is not None and not self._transfer.done():
            self._transfer.set_result(status)

    # --- ending ------------------------------------------------------------------------------

    async def _blind_transfer(self, number: str) -> None:
        """REFER the caller to ``number`` (RFC 3515) if the environment may call it, else say no."""
        board = self.board
        assert self.line is not None and self.dialog is not None
        async with board.db.reading() as session:
            allowed = await outbound_allowed(session, self.line.environment, number)
        if not allowed:
            log.warning(
                "call %s: transfer to %r refused: not in the outbound numbers of '%s'",
                self.call_id,
                number,
                self.line.environment,
            )
            await self._tell(CANT_TRANSFER)
            return
        remote = SipUri.parse(self.dialog.remote_target)
        target = board.settings.trunk or _hostport(remote.host, remote.port)
        self._transfer = asyncio.get_running_loop().create_future()
        refer = self.dialog.request(
            "REFER",
            board.via(),
            headers=[("Refer-To", f"<sip:{number}@{target}>"), ("Referred-By", f"<{self.dialog.local.uri}>")],
        )
        status: int | None = None
        try:
            response = await board.layer.request(refer, self.dialog.destination())
            if 200 <= response.status < 300:
                status = await asyncio.wait_for(
                    asyncio.shield(self._transfer), board.settings.transfer_timeout
                )
            else:
                status = response.status
        except (TransactionTimeout, TimeoutError):
            status = None
        if status is not None and 200 <= status < 300:
            log.info("call %s transferred to %s", self.call_id, number)
            await self.hang_up("bot", f"transferred to {number}")
            return
        log.warning("call %s: transfer to %s failed (%s)", self.call_id, number, status or "no answer")
        await self._tell(TRANSFER_FAILED)

    async def _tell(self, text: str) -> None:
        async with self.board.db.transaction() as tx:
            await do_tell_caller(tx, self.conversation_id, text, self.board.clock())

    async def hang_up(self, actor: str, reason: str) -> None:
        """Send BYE (once everything queued before was said) and close the conversation."""
        if self.state in (CallState.ENDING, CallState.ENDED):
            return
        self.state = CallState.ENDING
        self._stop_media()
        if self.dialog is not None:
            bye = self.dialog.request("BYE", self.board.via())
            with contextlib.suppress(TransactionTimeout, TimeoutError, ParseError):
                await asyncio.wait_for(
                    self.board.layer.request(bye, self.dialog.destination()), self.board.settings.bye_timeout
                )
        await self.finish(actor, reason)

    def caller_hung_up(self) -> None:
        """BYE from the caller (already answered 200)."""
        if self.state in (CallState.ENDING, CallState.ENDED):
            return
        self.state = CallState.ENDING
        self._stop_media()
        self.spawn(self.finish("customer", "the caller hung up"), "finish")

    def _stop_media(self) -> None:
        if self.sender is not None:
            self.sender.stop()
            self.board.media.remove(self.sender)
        if self._digit_timer is not None:
            self._digit_timer.cancel()

    async def finish(self, actor: str, reason: str) -> None:
        """Release everything and close the conversation (idempotent)."""
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        self._stop_media()
        self._wake.set()
        if self.listener is not None:
            self.listener.close()
        if self.subscription is not None:
            self.subscription.close()
        if self.rtp_transport is not None:
            self.rtp_transport.close()
        elif self.rtp_socket is not None:
            self.rtp_socket.close()
        self.board.forget(self)
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if self.conversation is not None:
            async with self.board.db.transaction() as tx:
                await do_end_call(tx, self.conversation_id, actor, reason, self.board.clock())
        log.info("call %s ended: %s", self.call_id, reason)


def new_conversation_id() -> str:
    """An unguessable conversation id (the same alphabet as Direct Line's)."""
    return secrets.token_urlsafe(18).replace("-", "A").replace("_", "B")


def _hostport(host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


class Switchboard(asyncio.DatagramProtocol):
    """The SIP server: one UDP endpoint, its transactions, and the calls in progress."""

    def __init__(
        self,
        *,
        db: Database,
        bus: Bus,
        bot: Bot,
        library: BotLibrary,
        clock: Clock,
        settings: VoiceSettings,
        synthesizer: SpeechSynthesizer | None = None,
        recognizer: SpeechRecognizer | None = None,
        media: MediaClock | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.bot = bot
        self.library = library
        self.clock = clock
        self.settings = settings
        self.synthesizer: SpeechSynthesizer = synthesizer or SilentSynthesizer()
        self.recognizer: SpeechRecognizer = recognizer or KeypadOnly()
        self.media = media or MediaClock()
        self.ports = PortPool(settings.host, *settings.rtp_ports)
        self.layer = TransactionLayer(self._send, self, timers=settings.timers, scheduler=scheduler)
        self.calls: dict[str, Call] = {}
        self.port = settings.port
        self.transport: asyncio.DatagramTransport | None = None
        self.counters = {"answered": 0, "refused": 0, "malformed": 0, "peak_calls": 0}
        self._switch_interval: float | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for SIP and start the media clock; a port in use turns voice off, not the server."""
        loop = asyncio.get_running_loop()
        # Bound here rather than by the loop: a failed bind then leaves no half-made transport.
        sock = socket.socket(
            socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET, socket.SOCK_DGRAM
        )
        try:
            sock.bind((self.settings.host, self.settings.port))
        except OSError as error:
            sock.close()
            log.error(
                "Voice: cannot listen on udp %s (%s); calls are off in this process",
                _hostport(self.settings.host, self.settings.port),
                error.strerror or error,
            )
            return
        sock.setblocking(False)
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=sock)
        self.port = self.transport.get_extra_info("sockname")[1]
        # The media clock thread waits for the GIL at each tick while the event loop computes; a
        # shorter switch interval (default 5 ms) bounds that wait to 1 ms (restored by ``stop``).
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, 0.001))
        self.media.start()
        log.info(
            "Voice: SIP on udp %s (speech out: %s; in: %s)",
            _hostport(self.settings.host, self.port),
            self.synthesizer.name,
            self.recognizer.name,
        )

    async def stop(self) -> None:
        """Hang up every call, stop listening."""
        calls = list(self.calls.values())
        if calls:
            # Bounded: a shutdown must not wait out every unanswered BYE's retransmissions.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(
                        *(c.hang_up("system", "the server is stopping") for c in calls),
                        return_exceptions=True,
                    ),
                    timeout=2.0,
                )
        if self.transport is not None:
            self.transport.close()
        self.media.stop()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    def stats(self) -> dict[str, Any]:
        """Calls in progress, counters and the RTP send-interval jitter (for benchmarks)."""
        return {"calls": len(self.calls), **self.counters, "media": self.media.stats.snapshot()}

    def reset_stats(self) -> None:
        """Zero the counters and the jitter histogram (between benchmark rounds)."""
        self.counters = dict.fromkeys(self.counters, 0)
        self.counters["peak_calls"] = len(self.calls)
        self.media.stats.reset()

    # --- transport ---------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        source: Address = (str(addr[0]), int(addr[1]))
        if not data.strip(b"\r\n\t \x00"):
            return  # RFC 5626 keep-alive
        try:
            message = parse_message(data)
        except ParseError as error:
            self._malformed(error, source)
            return
        try:
            self.layer.receive(message, source)
        except ParseError as error:  # a header only read on demand turned out malformed
            self._malformed(
                ParseError(error.reason, method=getattr(message, "method", None), headers=message.headers),
                source,
            )
        except Exception:
            log.exception("SIP message from %s could not be handled", _hostport(*source))

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP socket error: %s", exc)

    def _send(self, data: bytes, address: Address) -> None:
        if self.transport is not None:
            self.transport.sendto(data, address)

    def _malformed(self, error: ParseError, source: Address) -> None:
        """§21.4.1: a request we can answer gets 400 with the reason; anything else is dropped."""
        self.counters["malformed"] += 1
        if not error.answerable or error.headers is None:
            log.warning("dropped a malformed SIP datagram from %s: %s", _hostport(*source), error.reason)
            return
        log.warning(
            "malformed %s from %s: %s (answered %s)",
            error.method,
            _hostport(*source),
            error.reason,
            error.status,
        )
        reason = "Version Not Supported" if error.status == 505 else "Bad Request"
        response = response_from_headers(
            error.headers,
            error.status,
            reason,
            to_tag=new_tag(),
            headers=[("Warning", f'399 warmline "{error.reason}"'), ("User-Agent", USER_AGENT)],
        )
        with contextlib.suppress(ParseError):
            destination = response_destination(error.headers.vias()[0], source)
            self._send(response.to_bytes(), destination)

    def via(self) -> Via:
        """The Via of our own requests (its branch is set per transaction)."""
        return Via("UDP", self.settings.advertised_host, self.port, {"rport": None})

    def reply(self, transaction: ServerTransaction, status: int, reason: str, **options: Any) -> None:
        """Respond to a request (non-INVITE requests, and INVITEs refused before any call exists)."""
        response = response_to(transaction.request, status, reason, to_tag=_local_tag(transaction), **options)
        response.headers.add("User-Agent", USER_AGENT)
        if status == 405 or transaction.method == "OPTIONS":
            response.headers.add("Allow", ALLOW)
        self.layer.respond(transaction, response)

    def forget(self, call: Call) -> None:
        """A call is over (or was never answered)."""
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
        if call.state is CallState.ENDED and call.conversation is not None:
            self.counters["answered"] += 1
        elif call.conversation is None:
            self.counters["refused"] += 1

    # --- transaction user --------------------------------------------------------------------

    def on_request(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        try:
            if request.method == "INVITE":
                self._invite(transaction)
            elif request.method == "OPTIONS":
                self.reply(transaction, 200, "OK", headers=[("Accept", ACCEPT), ("Supported", "replaces")])
            elif request.method == "CANCEL":
                self._cancel(transaction)
            elif request.method in ("BYE", "INFO", "NOTIFY"):
                self._in_dialog(transaction)
            elif request.method in NOT_HERE:
                self.reply(transaction, 405, "Method Not Allowed")
            else:
                self.reply(transaction, 501, "Not Implemented")
        except Exception:
            log.exception("%s from %s failed", request.method, _hostport(*transaction.source))
            self.reply(transaction, 500, "Server Internal Error")

    def _invite(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        assert isinstance(transaction, InviteServerTransaction)
        if request.to.tag:
            call = self._call_for(request)
            if call is None:
                self.reply(transaction, 481, "Call/Transaction Does Not Exist")
            else:
                call.reinvite(transaction)
            return
        if request.call_id in self.calls:
            self.reply(transaction, 482, "Loop Detected")
            return
        call = Call(self, transaction, caller_id(request), dialled_number(request))
        self.calls[call.call_id] = call
        self.counters["peak_calls"] = max(self.counters["peak_calls"], len(self.calls))
        call.respond(100, "Trying")
        call.spawn(call.answer(), "answer")

    def _cancel(self, transaction: ServerTransaction) -> None:
        invite = self.layer.find_invite(transaction.request)
        if invite is None:
            self.reply(transaction, 481, "Call/Transaction Does Not Exist")
            return
        self.reply(transaction, 200, "OK")
        call = self.calls.get(invite.request.call_id)
        if invite.state is State.PROCEEDING:
            # §9.2: the INVITE gets 487; the call never starts (or its conversation closes at once).
            response = response_to(
                invite.request, 487, "Request Terminated", to_tag=call.local_tag if call else new_tag()
            )
            self.layer.respond(invite, response)
            if call is not None:
                call.cancelled.set()

    def _in_dialog(self, transaction: ServerTransaction) -> None:
        request = transaction.request
        call = self._call_for(request)
        if call is None or call.dialog is None:
            self.reply(transaction, 481, "Call/Transaction Does Not Exist")
            return
        if not call.dialog.accept_remote_cseq(request):
            self.reply(transaction, 500, "Server Internal Error", headers=[("Retry-After", "1")])
            return
        if request.method == "BYE":
            self.reply(transaction, 200, "OK")
            call.caller_hung_up()
        elif request.method == "INFO":
            if request.body and request.content_type not in ("application/dtmf-relay", "application/dtmf"):
                self.reply(transaction, 415, "Unsupported Media Type", headers=[("Accept", ACCEPT)])
                return
            self.reply(transaction, 200, "OK")
            key = dtmf_from_info(request) if request.body else None
            if key is not None:
                call.on_key(key)
        else:  # NOTIFY
            event = (request.headers.get("Event") or "").split(";", 1)[0].strip().lower()
            if event != "refer":
                self.reply(transaction, 489, "Bad Event")
                return
            self.reply(transaction, 200, "OK")
            status = sipfrag_status(request.body)
            if status is not None:
                call.refer_progress(status)

    def _call_for(self, request: SipRequest) -> Call | None:
        call = self.calls.get(request.call_id)
        if call is None or call.dialog is None or not call.dialog.matches(request):
            return None
        return call

    def on_ack(self, request: SipRequest, source: Address) -> None:
        call = self.calls.get(request.call_id)
        if call is not None and request.to.tag == call.local_tag:
            call.acknowledged(request)

    def on_stray_response(self, response: SipResponse, source: Address) -> None:
        log.debug("stray %s %s from %s", response.status, response.cseq[1], _hostport(*source))

    def on_transaction_timeout(self, transaction: ServerTransaction) -> None:
        call = self.calls.get(transaction.request.call_id)
        if call is not None and transaction is call.invite and call.state is CallState.ANSWERED:
            log.warning("call %s: no ACK for the 200 OK; hanging up", call.call_id)
            call.spawn(call.hang_up("system", "no ACK from the caller"), "hang up")


def _local_tag(transaction: ServerTransaction) -> str:
    """The To tag for a response: the request's own (in-dialog) or a fresh one."""
    return transaction.request.to.tag or new_tag()
