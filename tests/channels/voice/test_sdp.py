"""RFC 3264 offer/answer for one audio stream: PCMU, PCMA, telephone-event, or 488."""

from __future__ import annotations

import pytest

from warmline.channels.voice import sdp

OFFER = """v=0
o=caller 1 1 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=audio 40000 RTP/AVP 18 8 0 96
a=rtpmap:18 G729/8000
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-15
a=sendrecv
m=video 40002 RTP/AVP 97
a=rtpmap:97 H264/90000
"""


def test_the_answer_keeps_the_offerers_codec_preference_and_its_dtmf_type() -> None:
    answer, agreed = sdp.answer(sdp.SessionDescription.parse(OFFER), "127.0.0.1", 20000, 42)
    assert agreed.codec == sdp.Codec(8, "PCMA") and agreed.dtmf_payload_type == 96
    assert agreed.remote == ("10.0.0.1", 40000) and agreed.direction == "sendrecv" and agreed.sends
    audio, video = answer.media
    assert (audio.port, audio.formats, audio.rtpmap) == (
        20000,
        ["8", "96"],
        {8: ("PCMA", 8000), 96: ("telephone-event", 8000)},
    )
    assert audio.fmtp == {96: "0-15"}
    # §6: a refused stream stays in the answer, with port 0.
    assert (video.kind, video.port) == ("video", 0)
    text = answer.to_bytes().decode()
    assert "c=IN IP4 127.0.0.1\r\n" in text and "m=audio 20000 RTP/AVP 8 96\r\n" in text
    assert sdp.SessionDescription.parse(text).media[0].formats == ["8", "96"]


def test_static_payload_types_need_no_rtpmap_and_dynamic_ones_are_read_by_name() -> None:
    offer = sdp.SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 112 0\r\nc=IN IP4 192.0.2.1\r\n"
        "a=rtpmap:112 PCMU/8000\r\n"
    )
    _, agreed = sdp.answer(offer, "127.0.0.1", 20000, 1)
    assert agreed.codec == sdp.Codec(112, "PCMU") and agreed.dtmf_payload_type is None
    assert agreed.remote == ("192.0.2.1", 5004)


@pytest.mark.parametrize(
    ("offered", "ours", "sends"),
    [("sendonly", "recvonly", False), ("recvonly", "sendonly", True), ("inactive", "inactive", False)],
)
def test_direction_is_mirrored(offered: str, ours: str, sends: bool) -> None:
    answer, agreed = sdp.answer(
        sdp.SessionDescription.parse(OFFER.replace("a=sendrecv", f"a={offered}")), "h", 1, 1
    )
    assert answer.media[0].direction == ours and agreed.direction == ours and agreed.sends is sends


def test_a_hold_address_means_nothing_is_sent() -> None:
    _, agreed = sdp.answer(
        sdp.SessionDescription.parse(OFFER.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0")), "h", 1, 1
    )
    assert agreed.remote is None and not agreed.sends


def test_no_common_codec_is_not_acceptable() -> None:
    offer = sdp.SessionDescription.parse(
        OFFER.replace("m=audio 40000 RTP/AVP 18 8 0 96", "m=audio 40000 RTP/AVP 18 96")
    )
    with pytest.raises(sdp.NotAcceptable):
        sdp.answer(offer, "h", 1, 1)
    srtp = sdp.SessionDescription.parse(OFFER.replace("RTP/AVP 18 8 0 96", "RTP/SAVP 0"))
    with pytest.raises(sdp.NotAcceptable):
        sdp.answer(srtp, "h", 1, 1)


def test_our_offer_and_the_peers_answer() -> None:
    ours = sdp.offer("127.0.0.1", 20002, 7)
    assert ours.media[0].formats == ["0", "8", "101"]
    reply = sdp.SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8 101\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=recvonly\r\n"
    )
    agreed = sdp.accept_answer(reply)
    assert (agreed.codec.name, agreed.dtmf_payload_type, agreed.remote, agreed.direction) == (
        "PCMA",
        101,
        ("10.1.1.1", 30000),
        "sendonly",
    )


@pytest.mark.parametrize(
    "text", ["", "o=- 1 1 IN IP4 h\n", "v=0\nm=audio x RTP/AVP 0\n", "v=0\nc=IN IP4\n", "v=0\nxyz\n"]
)
def test_broken_sdp_is_an_sdp_error(text: str) -> None:
    with pytest.raises(sdp.SdpError):
        sdp.SessionDescription.parse(text)
