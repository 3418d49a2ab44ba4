"""RFC 3261 §17 transactions: retransmission schedules, matching, timeouts — on a hand-driven clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.channels.voice.fakes import ManualScheduler
from warmline.channels.voice.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    parse_message,
    response_to,
)
from warmline.channels.voice.sip.transaction import (
    Address,
    ServerTransaction,
    State,
    Timers,
    TransactionLayer,
    response_destination,
)

PEER: Address = ("10.0.0.1", 5061)


@dataclass
class Recorder:
    """Transport and transaction user at once: what was sent, and what reached the user."""

    sent: list[tuple[float, bytes, Address]] = field(default_factory=list)
    requests: list[ServerTransaction] = field(default_factory=list)
    acks: list[SipRequest] = field(default_factory=list)
    strays: list[SipResponse] = field(default_factory=list)
    timeouts: list[ServerTransaction] = field(default_factory=list)
    scheduler: ManualScheduler = field(default_factory=ManualScheduler)

    def send(self, data: bytes, address: Address) -> None:
        self.sent.append((self.scheduler.now, data, address))

    def on_request(self, transaction: ServerTransaction) -> None:
        self.requests.append(transaction)

    def on_ack(self, request: SipRequest, source: Address) -> None:
        self.acks.append(request)

    def on_stray_response(self, response: SipResponse, source: Address) -> None:
        self.strays.append(response)

    def on_transaction_timeout(self, transaction: ServerTransaction) -> None:
        self.timeouts.append(transaction)

    def times(self, start: str) -> list[float]:
        return [round(t, 3) for t, data, _ in self.sent if data.startswith(start.encode())]


def _layer() -> tuple[TransactionLayer, Recorder]:
    recorder = Recorder()
    layer = TransactionLayer(recorder.send, recorder, timers=Timers(), scheduler=recorder.scheduler)
    return layer, recorder


def _request(method: str, branch: str = "z9hG4bKabc", cseq: int = 1, to_tag: str | None = None) -> SipRequest:
    to = "<sip:15550100@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP 10.0.0.1:5061;branch={branch};rport"),
            ("From", "<sip:dana@10.0.0.1>;tag=f1"),
            ("To", to),
            ("Call-ID", "call-1"),
            ("CSeq", f"{cseq} {method}"),
        ]
    )
    return SipRequest(headers, b"", method=method, uri="sip:15550100@127.0.0.1")


def test_an_error_to_an_invite_is_resent_on_timer_g_until_h() -> None:
    layer, rec = _layer()
    layer.receive(_request("INVITE"), PEER)
    (transaction,) = rec.requests
    layer.respond(transaction, response_to(transaction.request, 486, "Busy Here", to_tag="t"))
    rec.scheduler.advance(40)
    # G: T1, doubling, capped at T2 (0.5, 1, 2, 4, 4...) until H fires at 64·T1 = 32 s.
    assert rec.times("SIP/2.0 486") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert rec.timeouts == [transaction] and transaction.state is State.TERMINATED
    assert layer.servers == {}


def test_the_ack_of_an_error_stops_retransmission_and_is_absorbed() -> None:
    layer, rec = _layer()
    layer.receive(_request("INVITE"), PEER)
    (transaction,) = rec.requests
    layer.respond(transaction, response_to(transaction.request, 404, "Not Found", to_tag="t"))
    rec.scheduler.advance(1.0)
    layer.receive(_request("ACK", to_tag="t"), PEER)  # same branch: the transaction's own ACK
    assert transaction.state is State.CONFIRMED
    rec.scheduler.advance(30)
    assert rec.times("SIP/2.0 404") == [0.0, 0.5] and rec.acks == [] and rec.timeouts == []
    assert transaction.state is State.TERMINATED  # timer I (T4)


def test_a_2xx_is_resent_until_the_dialog_ack_then_kept_until_timer_l() -> None:
    layer, rec = _layer()
    layer.receive(_request("INVITE"), PEER)
    (transaction,) = rec.requests
    layer.respond(transaction, response_to(transaction.request, 100, "Trying"))
    layer.respond(transaction, response_to(transaction.request, 200, "OK", to_tag="t"))
    rec.scheduler.advance(1.6)
    layer.receive(_request("INVITE"), PEER)  # a retransmitted INVITE is absorbed, the 200 resent
    ack = _request("ACK", branch="z9hG4bKnew", to_tag="t")  # the 2xx's ACK is its own transaction
    layer.receive(ack, PEER)
    rec.scheduler.advance(40)
    assert rec.times("SIP/2.0 200") == [0.0, 0.5, 1.5, 1.6]
    assert rec.acks == [ack] and len(rec.requests) == 1 and rec.timeouts == []
    assert layer.servers == {}


def test_a_2xx_never_acknowledged_times_out() -> None:
    layer, rec = _layer()
    layer.receive(_request("INVITE"), PEER)
    (transaction,) = rec.requests
    layer.respond(transaction, response_to(transaction.request, 200, "OK", to_tag="t"))
    rec.scheduler.advance(33)
    assert rec.timeouts == [transaction]


def test_non_invite_retransmissions_get_the_last_response_until_timer_j() -> None:
    layer, rec = _layer()
    layer.receive(_request("BYE", cseq=2, to_tag="t"), PEER)
    (transaction,) = rec.requests
    layer.receive(_request("BYE", cseq=2, to_tag="t"), PEER)  # Trying: nothing to resend yet
    layer.respond(transaction, response_to(transaction.request, 200, "OK"))
    rec.scheduler.advance(10)
    layer.receive(_request("BYE", cseq=2, to_tag="t"), PEER)
    rec.scheduler.advance(30)
    layer.receive(_request("BYE", cseq=2, to_tag="t"), PEER)  # after J: a new transaction
    assert rec.times("SIP/2.0 200") == [0.0, 10.0] and len(rec.requests) == 2


def test_cancel_finds_its_invite_and_responses_reach_rport() -> None:
    layer, rec = _layer()
    layer.receive(_request("INVITE"), ("192.0.2.7", 40000))
    layer.receive(_request("CANCEL"), ("192.0.2.7", 40000))
    layer.receive(_request("CANCEL", branch="z9hG4bKother"), ("192.0.2.7", 40000))
    invite, cancel, other = rec.requests
    assert layer.find_invite(cancel.request) is invite
    assert layer.find_invite(other.request) is None
    via = invite.request.vias[0]
    assert via.params == {"branch": "z9hG4bKabc", "rport": "40000", "received": "192.0.2.7"}
    assert response_destination(via, ("192.0.2.7", 40000)) == ("192.0.2.7", 40000)


def test_rfc2543_requests_without_a_magic_cookie_still_match() -> None:
    layer, rec = _layer()
    old = _request("INVITE", branch="1234")
    layer.receive(old, PEER)
    layer.receive(_request("INVITE", branch="1234"), PEER)
    layer.receive(_request("CANCEL", branch="1234"), PEER)
    invite, cancel = rec.requests
    assert layer.find_invite(cancel.request) is invite


def test_a_client_request_is_resent_on_timer_e_and_gives_up_on_f() -> None:
    layer, rec = _layer()
    results: list[object] = []
    layer.start_client(
        _request("BYE", branch="z9hG4bKc1"), PEER, results.append, lambda: results.append("timeout")
    )
    rec.scheduler.advance(40)
    assert rec.times("BYE") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert results == ["timeout"] and layer.clients == {}


def test_a_client_request_slows_down_after_a_provisional_and_ends_on_the_final() -> None:
    layer, rec = _layer()
    results: list[SipResponse] = []
    request = _request("REFER", branch="z9hG4bKc2")
    layer.start_client(request, PEER, results.append, lambda: None)
    rec.scheduler.advance(0.6)
    layer.receive(response_to(request, 100, "Trying"), PEER)
    rec.scheduler.advance(5)
    final = response_to(request, 202, "Accepted", to_tag="x")
    layer.receive(final, PEER)
    layer.receive(final, PEER)  # a retransmitted final is absorbed (Completed)
    rec.scheduler.advance(40)
    # E: 0.5, then 1 s later; after the 100, every T2 (4 s).
    assert rec.times("REFER") == [0.0, 0.5, 1.5, 5.5]
    assert [r.status for r in results] == [100, 202] and layer.clients == {}


def test_an_invite_client_acks_an_error_itself_and_passes_2xx_up() -> None:
    layer, rec = _layer()
    results: list[SipResponse] = []
    invite = _request("INVITE", branch="z9hG4bKc3")
    layer.start_client(invite, PEER, results.append, lambda: None)
    rec.scheduler.advance(1.6)
    assert rec.times("INVITE") == [0.0, 0.5, 1.5]  # timer A doubles without a cap
    busy = response_to(invite, 486, "Busy Here", to_tag="b")
    layer.receive(busy, PEER)
    layer.receive(busy, PEER)
    acks = [parse_message(data) for _, data, _ in rec.sent if data.startswith(b"ACK")]
    assert len(acks) == 2 and all(a.vias[0].branch == "z9hG4bKc3" and a.to.tag == "b" for a in acks)
    assert [r.status for r in results] == [486]

    second = _request("INVITE", branch="z9hG4bKc4", cseq=2)
    layer.start_client(second, PEER, results.append, lambda: None)
    ok = response_to(second, 200, "OK", to_tag="o")
    layer.receive(ok, PEER)
    layer.receive(ok, PEER)  # forked/retransmitted 2xx still reach the user, who ACKs each
    assert [r.status for r in results] == [486, 200, 200]


def test_a_response_nobody_waits_for_is_stray() -> None:
    layer, rec = _layer()
    layer.receive(response_to(_request("INVITE", branch="z9hG4bKlost"), 200, "OK", to_tag="z"), PEER)
    assert [r.status for r in rec.strays] == [200]
