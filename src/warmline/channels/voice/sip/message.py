"""SIP messages (RFC 3261 §7, §20, §25): parse datagrams, build and serialise requests and responses.

The parser is the server's first line of defence: any byte string either becomes a message or
raises ``ParseError`` — never another exception — and a ``ParseError`` keeps whatever headers
were readable, so the server can still answer ``400 Bad Request`` (§18.3, §21.4.1).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Final

SIP_VERSION: Final = "SIP/2.0"
# §8.1.1.7: branches of RFC 3261 elements start with this magic cookie.
BRANCH_COOKIE: Final = "z9hG4bK"
MAX_MESSAGE_BYTES: Final = 65_535

# §7.3.3 compact forms, plus the ones later RFCs added (RFC 3515 Refer-To, RFC 3892 Referred-By,
# RFC 3265 Event / Allow-Events, RFC 4028 Session-Expires).
COMPACT: Final = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "r": "Refer-To",
    "b": "Referred-By",
    "o": "Event",
    "u": "Allow-Events",
    "x": "Session-Expires",
}
# Canonical spelling of header names whose capitalisation is not plain title case.
_CANONICAL: Final = {
    name.lower(): name
    for name in (
        *COMPACT.values(),
        "CSeq",
        "WWW-Authenticate",
        "Max-Forwards",
        "Record-Route",
        "Call-Info",
        "MIME-Version",
        "P-Asserted-Identity",
        "RSeq",
        "RAck",
        "Subscription-State",
    )
}
# Headers whose comma-separated values are separate entries (§7.3.1); others keep commas as text.
_LIST_HEADERS: Final = frozenset({"via", "route", "record-route", "contact", "allow", "supported", "require"})
_TOKEN: Final = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_STATUS_LINE: Final = re.compile(r"^SIP/(\d+\.\d+) (\d{3}) ?(.*)$")
_REQUIRED: Final = ("Via", "From", "To", "Call-ID", "CSeq")


class ParseError(ValueError):
    """Not a valid SIP message; ``headers`` holds what could be read (for a 400's copies)."""

    def __init__(
        self,
        reason: str,
        *,
        method: str | None = None,
        headers: Headers | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.method = method
        self.headers = headers
        self.status = status

    @property
    def answerable(self) -> bool:
        """A request whose Via, From, To, Call-ID and CSeq were readable can still get a response."""
        if self.method is None or self.method == "ACK" or self.headers is None:
            return False
        try:
            return all(self.headers.get(name) for name in _REQUIRED) and bool(self.headers.vias())
        except ParseError:
            return False


def canonical(name: str) -> str:
    """The full, canonically capitalised header name (compact forms expanded)."""
    lowered = name.strip().lower()
    if len(lowered) == 1 and lowered in COMPACT:
        return COMPACT[lowered]
    return _CANONICAL.get(lowered) or "-".join(part.capitalize() for part in lowered.split("-"))


def split_list(value: str) -> list[str]:
    """Split a header value on commas outside quotes and angle brackets (§7.3.1)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    depth = 0
    for char in value:
        if quoted:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            continue
        if char == '"':
            quoted = True
        elif char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _params(text: str) -> dict[str, str | None]:
    """``;name=value;flag`` parameters; names are case-insensitive (§7.3.1)."""
    params: dict[str, str | None] = {}
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        params[name.strip().lower()] = value if sep else None
    return params


def _format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


@dataclass(frozen=True)
class SipUri:
    """A ``sip:``, ``sips:`` or ``tel:`` URI (§19.1)."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a URI; ``ParseError`` when it is not one."""
        text = text.strip()
        scheme, sep, rest = text.partition(":")
        scheme = scheme.lower()
        if not sep or scheme not in ("sip", "sips", "tel") or not rest:
            raise ParseError(f"unsupported URI '{text[:60]}'")
        rest = rest.split("?", 1)[0]
        if scheme == "tel":
            number, _, params = rest.partition(";")
            return cls("tel", number, "", None, _params(params))
        userinfo, at, hostport = rest.rpartition("@")
        user = userinfo.split(":", 1)[0] if at else None
        hostport, _, params = hostport.partition(";")
        host, port = split_hostport(hostport)
        return cls(scheme, user or None, host, port, _params(params))

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{_format_params(self.params)}"
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}:{user}{host}{port}{_format_params(self.params)}"


def split_hostport(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; ``ParseError`` on a bad host or port."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host:
            raise ParseError(f"bad IPv6 reference '{text[:60]}'")
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and port_text is None:
            raise ParseError(f"bad host '{text[:60]}'")
    else:
        host, colon, port_text_raw = text.partition(":")
        port_text = port_text_raw if colon else None
    if not host or not re.match(r"^[A-Za-z0-9.\-_:]+$", host):
        raise ParseError(f"bad host '{text[:60]}'")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ParseError(f"bad port '{port_text[:20]}'")
    return host, int(port_text)


@dataclass(frozen=True)
class NameAddr:
    """``"Display" <uri>;params`` or ``uri;params`` as in From, To, Contact, Refer-To (§20.10)."""

    uri: str
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse a name-addr or addr-spec; ``ParseError`` when malformed."""
        text = text.strip()
        if "<" in text:
            display, _, rest = text.partition("<")
            uri, closed, params = rest.partition(">")
            if not closed or not uri.strip():
                raise ParseError(f"unterminated '<' in '{text[:60]}'")
            display = display.strip()
            if len(display) >= 2 and display[0] == display[-1] == '"':
                display = display[1:-1]
            return cls(uri.strip(), display or None, _params(params))
        # addr-spec without brackets: parameters after the URI belong to the header (§20.10).
        uri, _, params = text.partition(";")
        if not uri.strip():
            raise ParseError("empty address")
        return cls(uri.strip(), None, _params(params))

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (§19.3)."""
        return self.params.get("tag")

    def with_params(self, **params: str | None) -> NameAddr:
        """A copy with parameters added or replaced."""
        return NameAddr(self.uri, self.display, {**self.params, **params})

    def __str__(self) -> str:
        display = f'"{self.display}" ' if self.display else ""
        return f"{display}<{self.uri}>{_format_params(self.params)}"


@dataclass(frozen=True)
class Via:
    """One Via entry: ``SIP/2.0/UDP host:port;branch=...;rport`` (§20.42, RFC 3581)."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one Via value; ``ParseError`` when malformed."""
        protocol, _, rest = text.strip().partition(" ")
        parts = [p.strip() for p in protocol.split("/")]
        if len(parts) != 3 or parts[0].upper() != "SIP" or not parts[2]:
            raise ParseError(f"bad Via '{text[:60]}'")
        sent_by, _, params = rest.strip().partition(";")
        host, port = split_hostport(sent_by)
        return cls(parts[2].upper(), host, port, _params(params))

    @property
    def branch(self) -> str | None:
        """The transaction id this element chose (§17)."""
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int]:
        """Where the sender listens for responses (default port 5060)."""
        return self.host, self.port or 5060

    def with_params(self, **params: str | None) -> Via:
        """A copy with parameters added or replaced (``received``, ``rport``)."""
        return Via(self.transport, self.host, self.port, {**self.params, **params})

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        return f"SIP/2.0/{self.transport} {host}{port}{_format_params(self.params)}"


class Headers:
    """An ordered multi-map of header fields with case-insensitive, compact-aware names."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = [(canonical(k), v) for k, v in items or []]

    def get(self, name: str) -> str | None:
        """The first value of a header, or None."""
        wanted = canonical(name)
        for key, value in self._items:
            if key == wanted:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value; list-valued headers (Via, Route, Contact...) split on their commas."""
        wanted = canonical(name)
        values = [v for k, v in self._items if k == wanted]
        if wanted.lower() in _LIST_HEADERS:
            return [part for value in values for part in split_list(value)]
        return values

    def add(self, name: str, value: str) -> None:
        """Append a header field."""
        self._items.append((canonical(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name with one value, at the first one's place."""
        self.set_all(name, [value])

    def set_all(self, name: str, values: list[str]) -> None:
        """Replace every field of this name with these values, at the first one's place."""
        wanted = canonical(name)
        index = next((i for i, (k, _) in enumerate(self._items) if k == wanted), len(self._items))
        self.remove(wanted)
        self._items[index:index] = [(wanted, v) for v in values]

    def remove(self, name: str) -> None:
        """Drop every field of this name."""
        wanted = canonical(name)
        self._items = [(k, v) for k, v in self._items if k != wanted]

    def items(self) -> list[tuple[str, str]]:
        """All fields in order."""
        return list(self._items)

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers(list(self._items))

    def vias(self) -> list[Via]:
        """The parsed Via entries, topmost first."""
        return [Via.parse(v) for v in self.get_all("Via")]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass
class SipMessage:
    """What requests and responses share: headers and a body."""

    headers: Headers
    body: bytes = b""

    @property
    def call_id(self) -> str:
        """The Call-ID (§20.8)."""
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        """The CSeq number and method (§20.16)."""
        return parse_cseq(self.headers.get("CSeq") or "")

    @property
    def from_(self) -> NameAddr:
        """The From header."""
        return NameAddr.parse(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddr:
        """The To header."""
        return NameAddr.parse(self.headers.get("To") or "")

    @property
    def vias(self) -> list[Via]:
        """The Via entries, topmost first."""
        return self.headers.vias()

    @property
    def content_type(self) -> str:
        """The media type of the body, lowercase and without parameters."""
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def _start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The wire form, with a Content-Length matching the body."""
        self.headers.set("Content-Length", str(len(self.body)))
        lines = [self._start_line(), *(f"{k}: {v}" for k, v in self.headers.items()), "", ""]
        return "\r\n".join(lines).encode() + self.body


@dataclass
class SipRequest(SipMessage):
    """A request: method and Request-URI (§7.1)."""

    method: str = ""
    uri: str = ""

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"

    @property
    def branch(self) -> str | None:
        """The topmost Via's branch."""
        vias = self.vias
        return vias[0].branch if vias else None


@dataclass
class SipResponse(SipMessage):
    """A response: status code and reason phrase (§7.2)."""

    status: int = 0
    reason: str = ""

    def _start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"


def parse_cseq(value: str) -> tuple[int, str]:
    """``"314159 INVITE"`` → ``(314159, "INVITE")``; ``ParseError`` otherwise."""
    number, _, method = value.strip().partition(" ")
    method = method.strip()
    if not number.isdigit() or len(number) > 10 or int(number) >= 2**31 or not _TOKEN.match(method or "-"):
        raise ParseError(f"bad CSeq '{value[:40]}'")
    if not method:
        raise ParseError(f"bad CSeq '{value[:40]}'")
    return int(number), method


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = data.partition(separator)
        if found:
            return head, body
    raise ParseError("no empty line after the headers (truncated message?)")


def _header_lines(head: str) -> list[str]:
    """Header lines with folded continuations (§7.3.1: a line starting with SP/HT) unfolded."""
    lines: list[str] = []
    for raw in re.split(r"\r?\n", head):
        if raw[:1] in (" ", "\t"):
            if not lines:
                raise ParseError("continuation line before any header")
            lines[-1] = f"{lines[-1].rstrip()} {raw.strip()}"
        elif raw:
            lines.append(raw)
    return lines


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one datagram; raises ``ParseError`` (only) when it is not a valid SIP message."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ParseError("message too large", status=513)
    # §7.5: CRLFs before the start line are ignored.
    data = data.lstrip(b"\r\n")
    if not data:
        raise ParseError("empty datagram")
    head_bytes, body = _split_head(data)
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("headers are not UTF-8") from None
    if "\x00" in head:
        raise ParseError("NUL byte in the headers")
    start, _, rest = head.partition("\n")
    start = start.rstrip("\r")
    method: str | None = None
    status_match = _STATUS_LINE.match(start)
    if not status_match:
        parts = start.split(" ")
        if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[2].startswith("SIP/"):
            raise ParseError(f"not a SIP start line: '{start[:60]}'")
        method = parts[0].upper()
    headers = Headers()
    malformed: str | None = None
    for line in _header_lines(rest):
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.match(name.strip()):
            # Keep reading: the headers after a bad line may still let us answer 400.
            malformed = malformed or line
            continue
        headers.add(name.strip(), value.strip())
    if malformed is not None:
        raise ParseError(f"malformed header line '{malformed[:60]}'", method=method, headers=headers)
    length_text = headers.get("Content-Length")
    if length_text is not None:
        if not length_text.isdigit() or len(length_text) > 6:
            raise ParseError(f"bad Content-Length '{length_text[:20]}'", method=method, headers=headers)
        length = int(length_text)
        # §18.3: bytes past Content-Length are discarded; a body cut short is an error (400).
        if length > len(body):
            raise ParseError(
                f"body is {len(body)} bytes, Content-Length says {length} (truncated)",
                method=method,
                headers=headers,
            )
        body = body[:length]
    if method is None:
        assert status_match is not None
        if status_match.group(1) != "2.0":
            raise ParseError(f"unsupported version SIP/{status_match.group(1)}")
        response = SipResponse(headers, body, status=int(status_match.group(2)), reason=status_match.group(3))
        _check_required(response, None)
        return response
    uri, version = start.split(" ")[1:]
    if version != SIP_VERSION:
        raise ParseError(f"unsupported version {version[:20]}", method=method, headers=headers, status=505)
    try:
        SipUri.parse(uri)
    except ParseError as error:
        raise ParseError(f"bad Request-URI: {error.reason}", method=method, headers=headers) from None
    request = SipRequest(headers, body, method=method, uri=uri)
    _check_required(request, method)
    return request


def _check_required(message: SipMessage, method: str | None) -> None:
    headers = message.headers
    for name in _REQUIRED:
        if not headers.get(name):
            raise ParseError(f"missing {name} header", method=method, headers=headers)
    try:
        if not message.vias:
            raise ParseError("missing Via header")
        _, cseq_method = message.cseq
        # Parsed here so that a bad address is a 400 now, not an exception in a handler later.
        _ = message.from_, message.to
    except ParseError as error:
        raise ParseError(error.reason, method=method, headers=headers) from None
    if method is not None and cseq_method.upper() != method:
        raise ParseError(f"CSeq method {cseq_method} does not match {method}", method=method, headers=headers)


def new_branch() -> str:
    """A unique branch for a new transaction (§8.1.1.7)."""
    return f"{BRANCH_COOKIE}{secrets.token_hex(10)}"


def new_tag() -> str:
    """A random From/To tag (§19.3)."""
    return secrets.token_hex(6)


def response_to(
    request: SipRequest,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> SipResponse:
    """A response copying Via, From, To, Call-ID and CSeq from the request (§8.2.6.2)."""
    return response_from_headers(request.headers, status, reason, to_tag=to_tag, headers=headers, body=body)


def response_from_headers(
    source: Headers,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> SipResponse:
    """A response built from a request's (possibly partly parsed) headers."""
    out = Headers()
    for via in source.get_all("Via"):
        out.add("Via", via)
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = source.get(name)
        if value is not None:
            out.add(name, value)
    to = out.get("To")
    if to_tag and to is not None:
        try:
            if NameAddr.parse(to).tag is None:
                # Appended as text: the To must stay the request's, byte for byte, plus our tag.
                out.set("To", f"{to};tag={to_tag}")
        except ParseError:
            pass
    for name, value in headers or []:
        out.add(name, value)
    return SipResponse(out, body, status=status, reason=reason)
