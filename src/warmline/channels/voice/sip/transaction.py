"""SIP transactions over UDP (RFC 3261 §17, with RFC 6026's Accepted state).

A transaction owns the retransmissions of one request and its responses: clients resend the
request until a response arrives (timers A, E) and give up after 64·T1 (B, F); servers resend
their final response until it is acknowledged (G, and 2xx until the dialog's ACK) and absorb late
retransmissions for a while (H, I, J, K, L, M). Time comes from a ``Scheduler`` so tests drive the
timers without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from warmline.channels.voice.sip.message import (
    BRANCH_COOKIE,
    Headers,
    SipRequest,
    SipResponse,
    Via,
)

log = logging.getLogger(__name__)

Address = tuple[str, int]
Send = Callable[[bytes, Address], None]


@dataclass(frozen=True)
class Timers:
    """T1 (RTT estimate), T2 (cap on non-INVITE retransmit interval), T4 (network lifetime) — §17.1.1.1."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


class Handle(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Runs a callback after a delay."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Handle: ...


class LoopScheduler:
    """The running asyncio loop's ``call_later``."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Handle:
        return asyncio.get_running_loop().call_later(delay, callback)


class State(StrEnum):
    """Transaction states of §17 (Accepted from RFC 6026)."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class TransactionTimeout(Exception):
    """No final response arrived (timer B or F fired)."""


def response_destination(via: Via, source: Address) -> Address:
    """Where a response goes over UDP: rport/received (RFC 3581, §18.2.2), else the sent-by."""
    host = via.params.get("received") or via.host
    rport = via.params.get("rport")
    if rport and rport.isdigit():
        return host, int(rport)
    if "rport" in via.params:
        return source
    return host, via.port or 5060


class Transaction:
    """What every transaction has: a key, a state, named timers and the layer it belongs to."""

    def __init__(self, layer: TransactionLayer, key: tuple[str, ...], request: SipRequest) -> None:
        self.layer = layer
        self.key = key
        self.request = request
        self.state = State.TRYING
        self._timers: dict[str, Handle] = {}

    def _start(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._stop(name)
        self._timers[name] = self.layer.scheduler.call_later(delay, callback)

    def _stop(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.layer.forget(self)


class ServerTransaction(Transaction):
    """A request received; the transaction user answers with ``respond``."""

    def __init__(
        self, layer: TransactionLayer, key: tuple[str, ...], request: SipRequest, source: Address
    ) -> None:
        super().__init__(layer, key, request)
        self.source = source
        self.destination = response_destination(request.vias[0], source)
        self.last_response: SipResponse | None = None
        self._wire: bytes | None = None

    @property
    def method(self) -> str:
        """The request's method."""
        return self.request.method

    def respond(self, response: SipResponse) -> None:
        """Send a response and move the state machine (a response after the final one is ignored)."""
        raise NotImplementedError

    def _send(self, response: SipResponse) -> None:
        self.last_response = response
        self._wire = response.to_bytes()
        self.layer.send(self._wire, self.destination)

    def _resend(self) -> None:
        if self._wire is not None:
            self.layer.send(self._wire, self.destination)

    def retransmitted(self) -> None:
        """The same request arrived again."""
        raise NotImplementedError


class InviteServerTransaction(ServerTransaction):
    """§17.2.1 (and RFC 6026): Proceeding → Completed/Confirmed for errors, Accepted for 2xx."""

    def __init__(
        self, layer: TransactionLayer, key: tuple[str, ...], request: SipRequest, source: Address
    ) -> None:
        super().__init__(layer, key, request, source)
        self.state = State.PROCEEDING
        self.acknowledged = False
        self._interval = layer.timers.t1

    def respond(self, response: SipResponse) -> None:
        timers = self.layer.timers
        if self.state is not State.PROCEEDING:
            return
        self._send(response)
        if response.status < 200:
            return
        self._interval = timers.t1
        if response.status < 300:
            # §13.3.1.4: the UAS core resends its 2xx until the ACK; RFC 6026 keeps the transaction
            # (Accepted) so retransmitted INVITEs are absorbed until timer L.
            self.state = State.ACCEPTED
            self._start("retransmit", self._interval, self._retransmit_2xx)
            self._start("L", 64 * timers.t1, self._timer_l)
        else:
            self.state = State.COMPLETED
            self._start("G", self._interval, self._timer_g)
            self._start("H", 64 * timers.t1, self._timer_h)

    def retransmitted(self) -> None:
        if self.state in (State.PROCEEDING, State.COMPLETED, State.ACCEPTED):
            self._resend()

    def ack(self) -> None:
        """An ACK matched: stops retransmissions (§17.2.1 Confirmed; the dialog's ACK for a 2xx)."""
        if self.state is State.COMPLETED:
            self.state = State.CONFIRMED
            self._stop("G")
            self._stop("H")
            self._start("I", self.layer.timers.t4, self._terminate)
        elif self.state is State.ACCEPTED and not self.acknowledged:
            self.acknowledged = True
            self._stop("retransmit")

    def _retransmit_2xx(self) -> None:
        self._resend()
        self._interval = min(2 * self._interval, self.layer.timers.t2)
        self._start("retransmit", self._interval, self._retransmit_2xx)

    def _timer_g(self) -> None:
        self._resend()
        self._interval = min(2 * self._interval, self.layer.timers.t2)
        self._start("G", self._interval, self._timer_g)

    def _timer_h(self) -> None:
        # No ACK for the error response: give up (§17.2.1).
        self._terminate()
        self.layer.user.on_transaction_timeout(self)

    def _timer_l(self) -> None:
        acknowledged = self.acknowledged
        self._terminate()
        if not acknowledged:
            # §13.3.1.4: a 2xx never acknowledged ends the session; the user sends BYE.
            self.layer.user.on_transaction_timeout(self)


class NonInviteServerTransaction(ServerTransaction):
    """§17.2.2: Trying → Proceeding → Completed (timer J absorbs retransmissions) → Terminated."""

    def respond(self, response: SipResponse) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return
        self._send(response)
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        self._start("J", 64 * self.layer.timers.t1, self._terminate)

    def retransmitted(self) -> None:
        if self.state in (State.PROCEEDING, State.COMPLETED):
            self._resend()


ResponseCallback = Callable[[SipResponse], None]


class ClientTransaction(Transaction):
    """A request sent; ``on_response`` hears provisional and final responses, ``on_timeout`` B/F."""

    def __init__(
        self,
        layer: TransactionLayer,
        key: tuple[str, ...],
        request: SipRequest,
        destination: Address,
        on_response: ResponseCallback,
        on_timeout: Callable[[], None],
    ) -> None:
        super().__init__(layer, key, request)
        self.destination = destination
        self.on_response = on_response
        self.on_timeout = on_timeout
        self._wire = request.to_bytes()
        self._interval = layer.timers.t1

    def start(self) -> None:
        """Send the request and arm the timers."""
        raise NotImplementedError

    def received(self, response: SipResponse) -> None:
        """A response matched this transaction."""
        raise NotImplementedError

    def _send(self) -> None:
        self.layer.send(self._wire, self.destination)

    def _timed_out(self) -> None:
        self._terminate()
        self.on_timeout()


class InviteClientTransaction(ClientTransaction):
    """§17.1.1: Calling (timer A resends, B gives up) → Proceeding → Completed (ACK, timer D)."""

    def start(self) -> None:
        self.state = State.CALLING
        self._send()
        self._start("A", self._interval, self._timer_a)
        self._start("B", 64 * self.layer.timers.t1, self._timed_out)

    def _timer_a(self) -> None:
        self._send()
        self._interval *= 2
        self._start("A", self._interval, self._timer_a)

    def received(self, response: SipResponse) -> None:
        if self.state in (State.CALLING, State.PROCEEDING):
            self._stop("A")
            self._stop("B")
            if response.status < 200:
                self.state = State.PROCEEDING
            elif response.status < 300:
                # RFC 6026 Accepted: more 2xx (from forks or retransmissions) still reach the user,
                # which acknowledges each; timer M ends the transaction.
                self.state = State.ACCEPTED
                self._start("M", 64 * self.layer.timers.t1, self._terminate)
            else:
                self.state = State.COMPLETED
                self._send_ack(response)
                self._start("D", max(32.0, 64 * self.layer.timers.t1), self._terminate)
            self.on_response(response)
        elif self.state is State.ACCEPTED and 200 <= response.status < 300:
            self.on_response(response)
        elif self.state is State.COMPLETED and response.status >= 300:
            self._send_ack(response)

    def _send_ack(self, response: SipResponse) -> None:
        """§17.1.1.3: the ACK for a non-2xx final response belongs to the transaction."""
        headers = Headers()
        headers.add("Via", self.request.headers.get_all("Via")[0])
        for name in ("Route",):
            for value in self.request.headers.get_all(name):
                headers.add(name, value)
        headers.add("Max-Forwards", "70")
        headers.add("From", self.request.headers.get("From") or "")
        headers.add("To", response.headers.get("To") or "")
        headers.add("Call-ID", self.request.call_id)
        headers.add("CSeq", f"{self.request.cseq[0]} ACK")
        ack = SipRequest(headers, b"", method="ACK", uri=self.request.uri)
        self.layer.send(ack.to_bytes(), self.destination)


class NonInviteClientTransaction(ClientTransaction):
    """§17.1.2: Trying (timer E resends up to T2, F gives up) → Proceeding → Completed (timer K)."""

    def start(self) -> None:
        self.state = State.TRYING
        self._send()
        self._start("E", self._interval, self._timer_e)
        self._start("F", 64 * self.layer.timers.t1, self._timed_out)

    def _timer_e(self) -> None:
        self._send()
        timers = self.layer.timers
        self._interval = timers.t2 if self.state is State.PROCEEDING else min(2 * self._interval, timers.t2)
        self._start("E", self._interval, self._timer_e)

    def received(self, response: SipResponse) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return
        if response.status < 200:
            self.state = State.PROCEEDING
        else:
            self.state = State.COMPLETED
            self._stop("E")
            self._stop("F")
            self._start("K", self.layer.timers.t4, self._terminate)
        self.on_response(response)


class TransactionUser(Protocol):
    """The layer above transactions: the user agent core (``warmline.channels.voice.calls``)."""

    def on_request(self, transaction: ServerTransaction) -> None:
        """A new request (not ACK) arrived; answer it through ``transaction.respond``."""

    def on_ack(self, request: SipRequest, source: Address) -> None:
        """An ACK outside any transaction: the ACK for a 2xx (§13.3.1.4)."""

    def on_stray_response(self, response: SipResponse, source: Address) -> None:
        """A response no transaction wants (a late 2xx retransmission)."""

    def on_transaction_timeout(self, transaction: ServerTransaction) -> None:
        """A final response was never acknowledged."""


def _server_key(request: SipRequest) -> tuple[str, ...]:
    """§17.2.3 matching: branch + sent-by + method (ACK matches INVITE); RFC 2543 fallback."""
    via = request.vias[0]
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    host, port = via.sent_by
    if branch.startswith(BRANCH_COOKIE):
        return ("3261", branch, host.lower(), str(port), method)
    # RFC 2543 peers: no unique branch; the dialog's identifiers and the top Via stand in for it.
    return ("2543", request.call_id, request.from_.tag or "", str(request.cseq[0]), method, str(via))


class TransactionLayer:
    """Matches messages to transactions (§17.1.3, §17.2.3) and keeps the live ones."""

    def __init__(
        self,
        send: Send,
        user: TransactionUser,
        *,
        timers: Timers | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.send = send
        self.user = user
        self.timers = timers or Timers()
        self.scheduler: Scheduler = scheduler or LoopScheduler()
        self.servers: dict[tuple[str, ...], ServerTransaction] = {}
        self.clients: dict[tuple[str, ...], ClientTransaction] = {}
        # 2xx'd INVITEs by (Call-ID, CSeq number): their ACK carries a new branch (§17.1.1.3).
        self._accepted: dict[tuple[str, int], InviteServerTransaction] = {}

    def receive(self, message: SipRequest | SipResponse, source: Address) -> None:
        """Dispatch a parsed message from the transport."""
        if isinstance(message, SipResponse):
            self._receive_response(message, source)
        else:
            self._receive_request(message, source)

    def _receive_request(self, request: SipRequest, source: Address) -> None:
        _stamp_via(request, source)
        key = _server_key(request)
        existing = self.servers.get(key)
        if request.method == "ACK":
            if isinstance(existing, InviteServerTransaction) and existing.state in (
                State.COMPLETED,
                State.CONFIRMED,
            ):
                existing.ack()
                return
            accepted = self._accepted.get((request.call_id, request.cseq[0]))
            if accepted is not None:
                accepted.ack()
            self.user.on_ack(request, source)
            return
        if existing is not None:
            existing.retransmitted()
            return
        transaction: ServerTransaction
        if request.method == "INVITE":
            transaction = InviteServerTransaction(self, key, request, source)
        else:
            transaction = NonInviteServerTransaction(self, key, request, source)
        self.servers[key] = transaction
        self.user.on_request(transaction)

    def _receive_response(self, response: SipResponse, source: Address) -> None:
        vias = response.vias
        key = (vias[0].branch or "", response.cseq[1].upper())
        transaction = self.clients.get(key)
        if transaction is None:
            self.user.on_stray_response(response, source)
            return
        transaction.received(response)

    def find_invite(self, cancel: SipRequest) -> InviteServerTransaction | None:
        """The INVITE transaction a CANCEL refers to (same key, method INVITE — §9.2)."""
        key = list(_server_key(cancel))
        key[4] = "INVITE"  # the method's place in both key forms
        found = self.servers.get(tuple(key))
        return found if isinstance(found, InviteServerTransaction) else None

    def respond(self, transaction: ServerTransaction, response: SipResponse) -> None:
        """Send a response through its transaction (and remember accepted INVITEs for their ACK)."""
        transaction.respond(response)
        if isinstance(transaction, InviteServerTransaction) and transaction.state is State.ACCEPTED:
            self._accepted[(transaction.request.call_id, transaction.request.cseq[0])] = transaction

    def start_client(
        self,
        request: SipRequest,
        destination: Address,
        on_response: ResponseCallback,
        on_timeout: Callable[[], None],
    ) -> ClientTransaction:
        """Send a request in a new client transaction (its top Via must carry a fresh branch)."""
        key = (request.branch or "", request.method)
        cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        transaction = cls(self, key, request, destination, on_response, on_timeout)
        self.clients[key] = transaction
        transaction.start()
        return transaction

    async def request(self, request: SipRequest, destination: Address) -> SipResponse:
        """Send a non-INVITE request; the final response, or ``TransactionTimeout``."""
        future: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()

        def on_response(response: SipResponse) -> None:
            if response.status >= 200 and not future.done():
                future.set_result(response)

        def on_timeout() -> None:
            if not future.done():
                future.set_exception(TransactionTimeout(f"no response to {request.method}"))

        self.start_client(request, destination, on_response, on_timeout)
        return await future

    def forget(self, transaction: Transaction) -> None:
        """Drop a terminated transaction."""
        if isinstance(transaction, ServerTransaction):
            if self.servers.get(transaction.key) is transaction:
                del self.servers[transaction.key]
            accepted_key = (transaction.request.call_id, transaction.request.cseq[0])
            if self._accepted.get(accepted_key) is transaction:
                del self._accepted[accepted_key]
        elif self.clients.get(transaction.key) is transaction:
            del self.clients[transaction.key]


def _stamp_via(request: SipRequest, source: Address) -> None:
    """§18.2.1 and RFC 3581: note the real source address in the top Via so responses reach it."""
    values = request.headers.get_all("Via")
    top = Via.parse(values[0])
    params: dict[str, str | None] = {}
    if top.host != source[0]:
        params["received"] = source[0]
    if "rport" in top.params:
        params["received"] = source[0]
        params["rport"] = str(source[1])
    if params:
        request.headers.set_all("Via", [str(top.with_params(**params)), *values[1:]])
