"""SIP dialogs (RFC 3261 §12): the peer-to-peer relationship an INVITE's 2xx creates.

A dialog knows both tags, the remote target (Contact), the route set (Record-Route) and the CSeq
counters, and builds the in-dialog requests (BYE, REFER, NOTIFY, re-INVITE) with them. It works
for both sides, so a call answered here and a second leg placed to an agent's phone share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from warmline.channels.voice.sip.message import (
    Headers,
    NameAddr,
    ParseError,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    new_branch,
)
from warmline.channels.voice.sip.transaction import Address

USER_AGENT = "Warmline"


@dataclass
class Dialog:
    """One dialog's state (§12.1); ``local``/``remote`` are the From/To name-addrs with their tags."""

    call_id: str
    local: NameAddr
    remote: NameAddr
    remote_target: str
    local_contact: str
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None

    @property
    def local_tag(self) -> str:
        """Our tag."""
        return self.local.tag or ""

    @property
    def remote_tag(self) -> str:
        """The peer's tag."""
        return self.remote.tag or ""

    @property
    def id(self) -> tuple[str, str, str]:
        """Call-ID, local tag, remote tag (§12)."""
        return self.call_id, self.local_tag, self.remote_tag

    @classmethod
    def as_uas(cls, invite: SipRequest, local_tag: str, local_contact: str) -> Dialog:
        """The dialog a UAS creates by answering ``invite`` with a 2xx (§12.1.1)."""
        contacts = invite.headers.get_all("Contact")
        target = NameAddr.parse(contacts[0]).uri if contacts else invite.from_.uri
        return cls(
            call_id=invite.call_id,
            local=invite.to.with_params(tag=local_tag),
            remote=invite.from_,
            remote_target=target,
            local_contact=local_contact,
            route_set=invite.headers.get_all("Record-Route"),
            local_seq=0,
            remote_seq=invite.cseq[0],
        )

    @classmethod
    def as_uac(cls, invite: SipRequest, response: SipResponse, local_contact: str) -> Dialog:
        """The dialog a UAC gets from a 2xx (or tagged 1xx) to its INVITE (§12.1.2)."""
        contacts = response.headers.get_all("Contact")
        target = NameAddr.parse(contacts[0]).uri if contacts else str(invite.uri)
        return cls(
            call_id=invite.call_id,
            local=invite.from_,
            remote=response.to,
            remote_target=target,
            local_contact=local_contact,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_seq=invite.cseq[0],
            remote_seq=None,
        )

    def matches(self, request: SipRequest) -> bool:
        """Whether an incoming request belongs to this dialog (its To tag is ours)."""
        return (
            request.call_id == self.call_id
            and request.to.tag == self.local_tag
            and (request.from_.tag or "") == self.remote_tag
        )

    def accept_remote_cseq(self, request: SipRequest) -> bool:
        """§12.2.2: a lower CSeq than the last one is out of order (500); ACK/CANCEL keep theirs."""
        number = request.cseq[0]
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and number < self.remote_seq:
            return False
        self.remote_seq = number
        return True

    def update_target(self, request_or_response: SipRequest | SipResponse) -> None:
        """A target refresh (re-INVITE, its 2xx) may move the peer's Contact (§12.2)."""
        contacts = request_or_response.headers.get_all("Contact")
        if contacts:
            self.remote_target = NameAddr.parse(contacts[0]).uri

    def destination(self) -> Address:
        """Where in-dialog requests go: the first loose route, else the remote target (§12.2.1.1)."""
        uri = SipUri.parse(NameAddr.parse(self.route_set[0]).uri if self.route_set else self.remote_target)
        if uri.scheme == "tel" or not uri.host:
            raise ParseError(f"cannot send to '{uri}'")
        return uri.host, uri.port or 5060

    def request(
        self,
        method: str,
        via: Via,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipRequest:
        """A new in-dialog request with the next CSeq and a fresh branch (§12.2.1.1)."""
        self.local_seq += 1
        return self._request(
            method, self.local_seq, via.with_params(branch=new_branch()), headers, body, content_type
        )

    def ack(self, via: Via, cseq: int, body: bytes = b"", content_type: str | None = None) -> SipRequest:
        """The ACK for a 2xx to our INVITE: same CSeq number, its own branch (§13.2.2.4)."""
        return self._request("ACK", cseq, via.with_params(branch=new_branch()), None, body, content_type)

    def _request(
        self,
        method: str,
        cseq: int,
        via: Via,
        extra: list[tuple[str, str]] | None,
        body: bytes,
        content_type: str | None,
    ) -> SipRequest:
        out = Headers()
        out.add("Via", str(via))
        out.add("Max-Forwards", "70")
        for route in self.route_set:
            out.add("Route", route)
        out.add("From", str(self.local))
        out.add("To", str(self.remote))
        out.add("Call-ID", self.call_id)
        out.add("CSeq", f"{cseq} {method}")
        out.add("Contact", f"<{self.local_contact}>")
        out.add("User-Agent", USER_AGENT)
        for name, value in extra or []:
            out.add(name, value)
        if body and content_type:
            out.add("Content-Type", content_type)
        return SipRequest(out, body, method=method, uri=self.remote_target)
