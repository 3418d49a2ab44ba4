"""The SIP parser: RFC 3261 messages in, ParseError (and nothing else) for everything that is not one."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmline.channels.voice.sip.message import (
    Headers,
    NameAddr,
    ParseError,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    canonical,
    parse_message,
    response_to,
    split_list,
)

INVITE = (
    b"INVITE sip:15550100@127.0.0.1:5080 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK776asdhds;rport\r\n"
    b"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bK2\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Dana" <sip:14255550100@10.0.0.1>;tag=1928301774\r\n'
    b"To: <sip:15550100@127.0.0.1>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:14255550100@10.0.0.1:5061>\r\n"
    b"Subject: a long\r\n"
    b"  folded\r\n"
    b"\tsubject\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\nEXTRA BYTES PAST THE LENGTH"
)


def test_a_request_with_every_kind_of_header_parses() -> None:
    message = parse_message(INVITE)
    assert isinstance(message, SipRequest)
    assert (message.method, message.uri) == ("INVITE", "sip:15550100@127.0.0.1:5080")
    assert [v.branch for v in message.vias] == ["z9hG4bK776asdhds", "z9hG4bK1", "z9hG4bK2"]
    assert message.vias[0].params["rport"] is None and message.vias[2].sent_by == ("10.0.0.9", 5070)
    assert message.cseq == (314159, "INVITE")
    assert message.from_.display == "Dana" and message.from_.tag == "1928301774"
    assert message.to.tag is None
    assert message.headers.get("subject") == "a long folded subject"
    # §18.3: bytes past Content-Length are discarded.
    assert message.body == b"v=0\n"


def test_compact_forms_mean_the_full_headers() -> None:
    data = (
        b"BYE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\nf: <sip:c@d>;tag=1\r\nt: <sip:a@b>;tag=2\r\n"
        b"i: abc\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n"
    )
    message = parse_message(data)
    assert message.call_id == "abc" and message.from_.tag == "1" and message.to.tag == "2"
    assert (
        canonical("i") == "Call-ID"
        and canonical("CSEQ") == "CSeq"
        and canonical("www-authenticate") == ("WWW-Authenticate")
    )


def test_a_response_parses() -> None:
    data = (
        b"SIP/2.0 202 Accepted\r\nVia: SIP/2.0/UDP h:5080;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 3 REFER\r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(data)
    assert isinstance(message, SipResponse)
    assert (message.status, message.reason, message.cseq) == (202, "Accepted", (3, "REFER"))


def test_lf_only_line_ends_and_leading_crlf_are_tolerated() -> None:
    data = b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\nFrom: <sip:c@d>;tag=1\n"
    data += b"To: <sip:a@b>\nCall-ID: x\nCSeq: 1 OPTIONS\n\n"
    assert parse_message(data).method == "OPTIONS"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "reason", "answerable"),
    [
        (b"\x00\x01garbage", "no empty line", False),
        (b"hello world\r\n\r\n", "not a SIP start line", False),
        (INVITE.replace(b"Content-Length: 4", b"Content-Length: 400"), "truncated", True),
        (INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"), "does not match", True),
        (INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: many INVITE"), "bad CSeq", True),
        (INVITE.replace(b"Call-ID: a84b4c76e66710@pc33.example.com\r\n", b""), "missing Call-ID", False),
        (INVITE.replace(b"Max-Forwards: 70", b"Max Forwards 70"), "malformed header", True),
        (INVITE.replace(b"Content-Length: 4", b"Content-Length: -4"), "bad Content-Length", True),
        (
            INVITE.replace(b"sip:15550100@127.0.0.1:5080 SIP", b"sip:15550100@127.0.0.1:99999 SIP"),
            "bad port",
            True,
        ),
        (
            INVITE.replace(b"To: <sip:15550100@127.0.0.1>", b"To: <sip:15550100@127.0.0.1"),
            "unterminated",
            True,
        ),
    ],
)
def test_malformed_messages_raise_parse_error_saying_why(data: bytes, reason: str, answerable: bool) -> None:
    with pytest.raises(ParseError) as raised:
        parse_message(data)
    assert reason in raised.value.reason
    assert raised.value.answerable is answerable


def test_another_sip_version_is_505() -> None:
    with pytest.raises(ParseError) as raised:
        parse_message(INVITE.replace(b"127.0.0.1:5080 SIP/2.0", b"127.0.0.1:5080 SIP/3.0"))
    assert raised.value.status == 505 and raised.value.answerable


def test_a_truncated_invite_keeps_the_headers_a_400_needs() -> None:
    with pytest.raises(ParseError) as raised:
        parse_message(INVITE.replace(b"Content-Length: 4", b"Content-Length: 900"))
    headers = raised.value.headers
    assert headers is not None and headers.get("Call-ID") == "a84b4c76e66710@pc33.example.com"


def test_serialised_messages_parse_back_the_same() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    again = parse_message(request.to_bytes())
    assert isinstance(again, SipRequest)
    assert again.headers.items() == request.headers.items() and again.body == request.body


def test_a_response_copies_the_request_and_adds_our_tag_once() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    response = response_to(request, 180, "Ringing", to_tag="abc")
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.headers.get("To") == "<sip:15550100@127.0.0.1>;tag=abc"
    assert response.to.tag == "abc" and response.cseq == (314159, "INVITE")
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, SipResponse) and parsed.headers.get("Content-Length") == "0"


def test_uris_addresses_and_vias() -> None:
    uri = SipUri.parse("sip:15550100@[::1]:5080;transport=udp;lr")
    assert (uri.user, uri.host, uri.port, uri.params) == (
        "15550100",
        "::1",
        5080,
        {"transport": "udp", "lr": None},
    )
    assert str(uri) == "sip:15550100@[::1]:5080;transport=udp;lr"
    assert SipUri.parse("tel:+14255550100;phone-context=x").user == "+14255550100"
    with pytest.raises(ParseError):
        SipUri.parse("http://example.com")
    address = NameAddr.parse('"Doe, Jane" <sip:jane@example.com;transport=udp>;tag=88sja8x')
    assert (address.display, address.uri, address.tag) == (
        "Doe, Jane",
        "sip:jane@example.com;transport=udp",
        "88sja8x",
    )
    bare = NameAddr.parse("sip:jane@example.com;tag=1")
    assert (bare.uri, bare.tag) == ("sip:jane@example.com", "1")
    via = Via.parse("SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKa;received=1.2.3.4")
    assert (
        str(via.with_params(rport="5061"))
        == "SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKa;received=1.2.3.4;rport=5061"
    )
    assert split_list('"a, b" <sip:x>, <sip:y;p=1,2>, sip:z') == ['"a, b" <sip:x>', "<sip:y;p=1,2>", "sip:z"]


def test_headers_keep_order_and_replace_in_place() -> None:
    headers = Headers([("Via", "a"), ("To", "t"), ("v", "b")])
    headers.set_all("Via", ["c", "d"])
    assert headers.items() == [("Via", "c"), ("Via", "d"), ("To", "t")]
    headers.set("to", "u")
    assert headers.get("To") == "u" and "TO" in headers and "From" not in headers


# --- fuzzing ------------------------------------------------------------------------------------------

_fuzz = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _never_crashes(data: bytes) -> None:
    try:
        message = parse_message(data)
    except ParseError:
        return
    # Whatever parses must serialise and parse back.
    parse_message(message.to_bytes())


@_fuzz
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    _never_crashes(data)


@_fuzz
@given(st.data())
def test_mutated_messages_never_crash_the_parser(data: st.DataObject) -> None:
    message = bytearray(INVITE)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = data.draw(st.integers(0, max(len(message) - 1, 0)))
        if kind == "flip" and message:
            message[at] = data.draw(st.sampled_from(b' :;,<>"\r\n\t\x00\xff@=0z'))
        elif kind == "cut":
            del message[at:]
        elif kind == "insert":
            message[at:at] = data.draw(st.binary(max_size=12))
        elif message:
            del message[at : at + data.draw(st.integers(1, 20))]
    _never_crashes(bytes(message))


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)


@_fuzz
@given(
    method=st.sampled_from(["INVITE", "BYE", "OPTIONS", "INFO", "NOTIFY", "REFER", "CANCEL"]),
    user=_token,
    host=_token,
    port=st.integers(1, 65535),
    tag=_token,
    call_id=_token,
    cseq=st.integers(0, 2**31 - 1),
    body=st.binary(max_size=200),
    extra=st.lists(st.tuples(_token, st.text(alphabet="abc ;=<>@:,", max_size=20)), max_size=4),
)
def test_generated_requests_round_trip(
    method: str,
    user: str,
    host: str,
    port: int,
    tag: str,
    call_id: str,
    cseq: int,
    body: bytes,
    extra: list[tuple[str, str]],
) -> None:
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP {host}:{port};branch=z9hG4bK{tag}"),
            ("From", f"<sip:{user}@{host}>;tag={tag}"),
            ("To", f"<sip:{user}@{host}:{port}>"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            *((f"X-{name}", value.strip()) for name, value in extra),
        ]
    )
    request = SipRequest(headers, body, method=method, uri=f"sip:{user}@{host}:{port}")
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, SipRequest)
    assert (parsed.method, parsed.uri, parsed.body, parsed.cseq) == (
        method,
        request.uri,
        body,
        (cseq, method),
    )
    assert parsed.headers.items() == request.headers.items()
