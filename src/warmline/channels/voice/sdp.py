"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for one audio stream.

Warmline speaks G.711 only — PCMU (payload type 0) and PCMA (8), RFC 3551 — plus RFC 4733
``telephone-event`` for DTMF. The answer keeps the offerer's codec preference (§6.1), refuses
every other stream with port 0, and there is no answer at all (``488``) when no codec is shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final


class SdpError(ValueError):
    """A session description that cannot be parsed."""


class NotAcceptable(ValueError):
    """No stream of the offer can be answered (SIP ``488 Not Acceptable Here``)."""


@dataclass(frozen=True)
class Codec:
    """An RTP payload format: payload type, encoding name and clock rate."""

    payload_type: int
    name: str
    clock_rate: int = 8000


PCMU: Final = Codec(0, "PCMU")
PCMA: Final = Codec(8, "PCMA")
SUPPORTED: Final = {"PCMU": PCMU, "PCMA": PCMA}
TELEPHONE_EVENT: Final = "telephone-event"
DEFAULT_DTMF_PAYLOAD: Final = 101
DIRECTIONS: Final = ("sendrecv", "sendonly", "recvonly", "inactive")
_REVERSE: Final = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
_STATIC: Final = {
    0: ("PCMU", 8000),
    8: ("PCMA", 8000),
    3: ("GSM", 8000),
    9: ("G722", 8000),
    18: ("G729", 8000),
}


@dataclass
class Media:
    """One ``m=`` section."""

    kind: str
    port: int
    protocol: str
    formats: list[str]
    connection: str | None = None
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: str | None = None
    ptime: int | None = None

    def encoding(self, payload_type: int) -> tuple[str, int] | None:
        """The encoding name and clock rate of a payload type (rtpmap, else the static table)."""
        return self.rtpmap.get(payload_type) or _STATIC.get(payload_type)


@dataclass
class SessionDescription:
    """A session description: origin, connection, and its media sections."""

    origin_user: str = "-"
    session_id: int = 0
    session_version: int = 0
    origin_address: str = "127.0.0.1"
    name: str = "-"
    connection: str | None = None
    direction: str | None = None
    media: list[Media] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body; ``SdpError`` when it is not one."""
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        sdp = cls()
        current: Media | None = None
        seen_version = False
        for raw in text.splitlines():
            line = raw.strip()
            if not line:
                continue
            if len(line) < 2 or line[1] != "=":
                raise SdpError(f"bad SDP line '{line[:40]}'")
            kind, value = line[0], line[2:].strip()
            if kind == "v":
                seen_version = value == "0"
            elif kind == "o":
                parts = value.split()
                if len(parts) != 6 or not parts[1].isdigit() or not parts[2].isdigit():
                    raise SdpError(f"bad origin '{value[:60]}'")
                sdp.origin_user, sdp.origin_address = parts[0], parts[5]
                sdp.session_id, sdp.session_version = int(parts[1]), int(parts[2])
            elif kind == "s":
                sdp.name = value or "-"
            elif kind == "c":
                address = _connection(value)
                if current is None:
                    sdp.connection = address
                else:
                    current.connection = address
            elif kind == "m":
                current = _media(value)
                sdp.media.append(current)
            elif kind == "a":
                _attribute(sdp, current, value)
        if not seen_version:
            raise SdpError("missing v=0")
        return sdp

    def to_bytes(self) -> bytes:
        """The wire form (CRLF line ends)."""
        family = "IP6" if ":" in self.origin_address else "IP4"
        lines = [
            "v=0",
            f"o={self.origin_user} {self.session_id} {self.session_version} "
            f"IN {family} {self.origin_address}",
            f"s={self.name}",
        ]
        if self.connection:
            lines.append(f"c=IN {'IP6' if ':' in self.connection else 'IP4'} {self.connection}")
        lines.append("t=0 0")
        for media in self.media:
            lines.append(f"m={media.kind} {media.port} {media.protocol} {' '.join(media.formats)}")
            if media.connection and media.connection != self.connection:
                lines.append(f"c=IN {'IP6' if ':' in media.connection else 'IP4'} {media.connection}")
            for payload_type, (name, rate) in media.rtpmap.items():
                lines.append(f"a=rtpmap:{payload_type} {name}/{rate}")
            for payload_type, params in media.fmtp.items():
                lines.append(f"a=fmtp:{payload_type} {params}")
            if media.ptime:
                lines.append(f"a=ptime:{media.ptime}")
            if media.direction:
                lines.append(f"a={media.direction}")
        return ("\r\n".join(lines) + "\r\n").encode()


def _connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad connection '{value[:60]}'")
    return parts[2].split("/", 1)[0]


def _media(value: str) -> Media:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"bad media line '{value[:60]}'")
    port_text = parts[1].split("/", 1)[0]
    if not port_text.isdigit() or int(port_text) > 65535:
        raise SdpError(f"bad media port '{parts[1][:20]}'")
    return Media(parts[0], int(port_text), parts[2], parts[3:])


def _attribute(sdp: SessionDescription, media: Media | None, value: str) -> None:
    name, _, rest = value.partition(":")
    if name in DIRECTIONS:
        if media is None:
            sdp.direction = name
        else:
            media.direction = name
        return
    if media is None:
        return
    if name == "rtpmap":
        payload, _, encoding = rest.partition(" ")
        parts = encoding.strip().split("/")
        if payload.isdigit() and len(parts) >= 2 and parts[1].isdigit():
            media.rtpmap[int(payload)] = (parts[0], int(parts[1]))
    elif name == "fmtp":
        payload, _, params = rest.partition(" ")
        if payload.isdigit():
            media.fmtp[int(payload)] = params.strip()
    elif name == "ptime" and rest.strip().isdigit():
        media.ptime = int(rest.strip())


@dataclass(frozen=True)
class Negotiated:
    """What both sides agreed for the audio stream; ``direction`` is ours (``sendrecv``, ``recvonly``...)."""

    codec: Codec
    dtmf_payload_type: int | None
    remote: tuple[str, int] | None
    direction: str

    @property
    def sends(self) -> bool:
        """Whether we may send audio (not on hold, not recvonly for us)."""
        return self.remote is not None and self.direction in ("sendrecv", "sendonly")


def _choose(media: Media) -> tuple[Codec, int | None] | None:
    """The offerer's first supported codec (with the offer's payload type) and its DTMF type."""
    codec: Codec | None = None
    dtmf: int | None = None
    for text in media.formats:
        if not text.isdigit():
            continue
        payload_type = int(text)
        encoding = media.encoding(payload_type)
        if encoding is None:
            continue
        name, rate = encoding
        if codec is None and name.upper() in SUPPORTED and rate == 8000:
            codec = Codec(payload_type, SUPPORTED[name.upper()].name)
        elif dtmf is None and name.lower() == TELEPHONE_EVENT and rate == 8000:
            dtmf = payload_type
    return (codec, dtmf) if codec is not None else None


def answer(
    offer: SessionDescription, address: str, port: int, session_id: int, version: int = 0
) -> tuple[SessionDescription, Negotiated]:
    """Answer an offer (RFC 3264 §6): the first usable audio stream; ``NotAcceptable`` if none."""
    chosen: Negotiated | None = None
    sections: list[Media] = []
    for media in offer.media:
        choice = _choose(media) if media.kind == "audio" and media.protocol == "RTP/AVP" else None
        if chosen is not None or choice is None or media.port == 0:
            # §6: a refused stream is answered with port 0 and (any) one of the offered formats.
            sections.append(Media(media.kind, 0, media.protocol, media.formats[:1]))
            continue
        codec, dtmf = choice
        direction = _REVERSE[media.direction or offer.direction or "sendrecv"]
        host = media.connection or offer.connection
        remote = None if not host or host in ("0.0.0.0", "::") else (host, media.port)
        formats = [str(codec.payload_type)]
        rtpmap = {codec.payload_type: (codec.name, 8000)}
        fmtp: dict[int, str] = {}
        if dtmf is not None:
            formats.append(str(dtmf))
            rtpmap[dtmf] = (TELEPHONE_EVENT, 8000)
            fmtp[dtmf] = media.fmtp.get(dtmf, "0-16")
        sections.append(Media("audio", port, "RTP/AVP", formats, None, rtpmap, fmtp, direction, 20))
        chosen = Negotiated(codec, dtmf, remote, direction)
    if chosen is None:
        raise NotAcceptable("no audio stream with PCMU or PCMA")
    sdp = SessionDescription(
        origin_user="warmline",
        session_id=session_id,
        session_version=version,
        origin_address=address,
        name="Warmline",
        connection=address,
        media=sections,
    )
    return sdp, chosen


def offer(address: str, port: int, session_id: int, version: int = 0) -> SessionDescription:
    """Our offer for a new call leg: PCMU, PCMA and telephone-event, in that preference."""
    media = Media(
        "audio",
        port,
        "RTP/AVP",
        ["0", "8", str(DEFAULT_DTMF_PAYLOAD)],
        rtpmap={0: ("PCMU", 8000), 8: ("PCMA", 8000), DEFAULT_DTMF_PAYLOAD: (TELEPHONE_EVENT, 8000)},
        fmtp={DEFAULT_DTMF_PAYLOAD: "0-16"},
        direction="sendrecv",
        ptime=20,
    )
    return SessionDescription("warmline", session_id, version, address, "Warmline", address, None, [media])


def accept_answer(answer_sdp: SessionDescription) -> Negotiated:
    """What an answer to our offer agreed; ``NotAcceptable`` if it refused audio."""
    for media in answer_sdp.media:
        if media.kind != "audio" or media.port == 0:
            continue
        choice = _choose(media)
        if choice is None:
            break
        host = media.connection or answer_sdp.connection
        remote = None if not host or host in ("0.0.0.0", "::") else (host, media.port)
        direction = _REVERSE[media.direction or answer_sdp.direction or "sendrecv"]
        return Negotiated(choice[0], choice[1], remote, direction)
    raise NotAcceptable("the answer refused the audio stream")
