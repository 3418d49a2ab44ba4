"""A scripted SIP phone for tests: sends requests over loopback UDP, waits for what comes back."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from warmline.channels.voice import sdp
from warmline.channels.voice.rtp import RtpPacket
from warmline.channels.voice.sip.message import (
    Headers,
    NameAddr,
    SipRequest,
    SipResponse,
    SipUri,
    parse_message,
    response_to,
)

Address = tuple[str, int]
Message = SipRequest | SipResponse


def offer_sdp(
    port: int, formats: str = "0 101", direction: str = "sendrecv", host: str = "127.0.0.1"
) -> bytes:
    """An SDP offer from the phone."""
    return (
        f"v=0\r\no=phone 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {formats}\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
        f"a={direction}\r\n"
    ).encode()


@dataclass
class Phone(asyncio.DatagramProtocol):
    """One caller: a SIP socket, an RTP socket, and the state of its one call."""

    server: Address
    number: str = "14255550100"
    dialled: str = "15550100"
    received: list[Message] = field(default_factory=list)
    unparsed: list[bytes] = field(default_factory=list)
    call_id: str = field(default_factory=lambda: f"{secrets.token_hex(8)}@phone")
    from_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    remote_tag: str | None = None
    remote_target: str | None = None
    answer: sdp.SessionDescription | None = None
    rtp: socket.socket | None = None
    audio: list[RtpPacket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cseq = itertools.count(1)
        self._branches = itertools.count(1)
        self._arrived = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, server: Address, **options: Any) -> Phone:
        phone = cls(server, **options)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: phone, local_addr=("127.0.0.1", 0))
        phone.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        phone.rtp.bind(("127.0.0.1", 0))
        phone.rtp.setblocking(False)
        loop.add_reader(phone.rtp.fileno(), phone._read_rtp)
        return phone

    def close(self) -> None:
        if self.rtp is not None:
            asyncio.get_running_loop().remove_reader(self.rtp.fileno())
            self.rtp.close()
        if self.transport is not None:
            self.transport.close()

    # --- transport ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        try:
            self.received.append(parse_message(data))
        except ValueError:
            self.unparsed.append(data)
        self._arrived.set()

    def _read_rtp(self) -> None:
        assert self.rtp is not None
        while True:
            try:
                data = self.rtp.recv(2048)
            except BlockingIOError:
                return
            self.audio.append(RtpPacket.parse(data))

    @property
    def address(self) -> Address:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    @property
    def rtp_port(self) -> int:
        assert self.rtp is not None
        return int(self.rtp.getsockname()[1])

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.server)

    def send(self, message: Message) -> None:
        self.send_raw(message.to_bytes())

    async def expect(self, want: Callable[[Message], bool], within: float = 5.0) -> Message:
        """The first message received (and not yet taken) that ``want`` accepts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for index, message in enumerate(self.received):
                if want(message):
                    return self.received.pop(index)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"nothing matched within {within} s; got {self.describe()}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def response(self, method: str, status: int | None = None, within: float = 5.0) -> SipResponse:
        """The next final (or given) response to ``method``."""
        found = await self.expect(
            lambda m: (
                isinstance(m, SipResponse)
                and m.cseq[1] == method
                and (m.status == status if status is not None else m.status >= 200)
            ),
            within,
        )
        assert isinstance(found, SipResponse)
        return found

    async def request(self, method: str, within: float = 5.0) -> SipRequest:
        """The next request of ``method`` from the server."""
        found = await self.expect(lambda m: isinstance(m, SipRequest) and m.method == method, within)
        assert isinstance(found, SipRequest)
        return found

    def describe(self) -> list[str]:
        return [
            f"{m.status} {m.cseq[1]}" if isinstance(m, SipResponse) else f"{m.method}" for m in self.received
        ] + [f"unparsed {len(d)} bytes" for d in self.unparsed]

    # --- requests -----------------------------------------------------------------------------

    def _headers(self, method: str, cseq: int | None = None, branch: str | None = None) -> Headers:
        host, port = self.address
        to = f"<sip:{self.dialled}@{self.server[0]}:{self.server[1]}>"
        if self.remote_tag:
            to += f";tag={self.remote_tag}"
        return Headers(
            [
                ("Via", f"SIP/2.0/UDP {host}:{port};branch={branch or self.new_branch()};rport"),
                ("Max-Forwards", "70"),
                ("From", f'"Caller" <sip:{self.number}@{host}:{port}>;tag={self.from_tag}'),
                ("To", to),
                ("Call-ID", self.call_id),
                ("CSeq", f"{cseq if cseq is not None else next(self._cseq)} {method}"),
                ("Contact", f"<sip:{self.number}@{host}:{port}>"),
            ]
        )

    def new_branch(self) -> str:
        return f"z9hG4bK{self.from_tag}{next(self._branches)}"

    def invite(self, dialled: str = "15550100", body: bytes | None = None) -> SipRequest:
        self.dialled = dialled
        headers = self._headers("INVITE")
        body = offer_sdp(self.rtp_port) if body is None else body
        if body:
            headers.add("Content-Type", "application/sdp")
        request = SipRequest(
            headers, body, method="INVITE", uri=f"sip:{dialled}@{self.server[0]}:{self.server[1]}"
        )
        self.send(request)
        return request

    async def call(self, dialled: str = "15550100", body: bytes | None = None) -> SipResponse:
        """INVITE, wait for 200, ACK: the call is up."""
        invite = self.invite(dialled, body)
        ok = await self.response("INVITE")
        assert ok.status == 200, f"{ok.status} {ok.reason}"
        self.established(ok)
        self.ack(invite, ok)
        return ok

    def established(self, ok: SipResponse) -> None:
        self.remote_tag = ok.to.tag
        contacts = ok.headers.get_all("Contact")
        self.remote_target = NameAddr.parse(contacts[0]).uri if contacts else None
        if ok.body:
            self.answer = sdp.SessionDescription.parse(ok.body)

    def ack(self, invite: SipRequest, response: SipResponse) -> None:
        """ACK a final response: the same branch for an error, a new one for a 2xx (§17.1.1.3)."""
        same = response.status >= 300
        headers = self._headers("ACK", cseq=invite.cseq[0], branch=invite.branch if same else None)
        headers.set("To", response.headers.get("To") or "")
        self.send(SipRequest(headers, b"", method="ACK", uri=self.remote_target or invite.uri))

    def in_dialog(
        self, method: str, body: bytes = b"", content_type: str | None = None, **extra: str
    ) -> SipRequest:
        headers = self._headers(method)
        for name, value in extra.items():
            headers.add(name.replace("_", "-"), value)
        if content_type:
            headers.add("Content-Type", content_type)
        request = SipRequest(headers, body, method=method, uri=self.remote_target or "sip:x@127.0.0.1")
        self.send(request)
        return request

    def options(self) -> SipRequest:
        headers = self._headers("OPTIONS")
        request = SipRequest(headers, b"", method="OPTIONS", uri=f"sip:{self.server[0]}:{self.server[1]}")
        self.send(request)
        return request

    def cancel(self, invite: SipRequest) -> SipRequest:
        headers = self._headers("CANCEL", cseq=invite.cseq[0], branch=invite.branch)
        request = SipRequest(headers, b"", method="CANCEL", uri=invite.uri)
        self.send(request)
        return request

    def reply(self, request: SipRequest, status: int, reason: str) -> None:
        self.send(response_to(request, status, reason))

    # --- media --------------------------------------------------------------------------------

    @property
    def server_media(self) -> Address:
        assert self.answer is not None
        media = self.answer.media[0]
        return media.connection or self.answer.connection or "127.0.0.1", media.port

    def press(self, key: str, *, timestamp: int = 8000, sequence: int = 100) -> None:
        """A key as RFC 4733 events: three updates and the end packet three times."""
        assert self.rtp is not None
        event = "0123456789*#".index(key)
        for i, end in enumerate([False, False, False, True, True, True]):
            payload = bytes([event, (0x80 if end else 0) | 10]) + struct.pack("!H", 160 * min(i + 1, 4))
            packet = RtpPacket(101, sequence + min(i, 3), timestamp, 0xCAFE, payload, marker=i == 0)
            self.rtp.sendto(packet.to_bytes(), self.server_media)

    @staticmethod
    def uri_user(uri: str) -> str | None:
        return SipUri.parse(uri).user
