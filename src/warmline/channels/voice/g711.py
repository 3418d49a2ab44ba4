"""G.711 μ-law (PCMU) and A-law (PCMA) written out, because ``audioop`` left Python in 3.13 (PEP 594).

Decoding is a 256-entry table; encoding a 65,536-entry table built on first use; converting
between the two laws is one ``bytes.translate``, so speech synthesised once as μ-law serves PCMA
calls too.
"""

from __future__ import annotations

import sys
from array import array
from functools import cache
from typing import Final

_ULAW_BIAS: Final = 0x84
_ULAW_CLIP: Final = 32635
_ALAW_SEGMENT_ENDS: Final = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
SILENCE_ULAW: Final = 0xFF
SILENCE_ALAW: Final = 0xD5


def ulaw_to_linear(code: int) -> int:
    """One μ-law byte to a 16-bit sample (ITU-T G.711 Table 2a)."""
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    sample = (((code & 0x0F) << 3) + _ULAW_BIAS) << exponent
    sample -= _ULAW_BIAS
    return -sample if code & 0x80 else sample


def linear_to_ulaw(sample: int) -> int:
    """One 16-bit sample to μ-law: 14-bit magnitude, biased and clipped, segment + mantissa, inverted."""
    value = sample >> 2
    if value < 0:
        value, mask = -value, 0x7F
    else:
        mask = 0xFF
    value = min(value, _ULAW_CLIP >> 2) + (_ULAW_BIAS >> 2)
    segment = max(value.bit_length() - 6, 0)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def alaw_to_linear(code: int) -> int:
    """One A-law byte to a 16-bit sample (ITU-T G.711 Table 1a)."""
    code ^= 0x55
    segment = (code >> 4) & 0x07
    sample = ((code & 0x0F) << 4) + 8
    if segment:
        sample = (sample + 0x100) << (segment - 1)
    return sample if code & 0x80 else -sample


def linear_to_alaw(sample: int) -> int:
    """One 16-bit sample to A-law (13-bit magnitude, segment + 4-bit mantissa, even bits inverted)."""
    value = sample >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = next((i for i, end in enumerate(_ALAW_SEGMENT_ENDS) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    code = segment << 4
    code |= (value >> (1 if segment < 2 else segment)) & 0x0F
    return code ^ mask


ULAW_DECODE: Final = tuple(ulaw_to_linear(c) for c in range(256))
ALAW_DECODE: Final = tuple(alaw_to_linear(c) for c in range(256))
ULAW_TO_ALAW: Final = bytes(linear_to_alaw(ulaw_to_linear(c)) for c in range(256))
ALAW_TO_ULAW: Final = bytes(linear_to_ulaw(alaw_to_linear(c)) for c in range(256))


@cache
def _encode_table(law: str) -> bytes:
    encode = linear_to_ulaw if law == "ulaw" else linear_to_alaw
    # Indexed by the sample's 16-bit two's-complement pattern.
    return bytes(encode(i - 65536 if i >= 32768 else i) for i in range(65536))


def _samples(pcm: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _pcm(samples: array[int]) -> bytes:
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def encode(pcm: bytes, law: str = "ulaw") -> bytes:
    """Little-endian signed 16-bit PCM to μ-law (``"ulaw"``) or A-law (``"alaw"``)."""
    table = _encode_table(law)
    return bytes(table[s & 0xFFFF] for s in _samples(pcm))


def decode(data: bytes, law: str = "ulaw") -> bytes:
    """μ-law or A-law bytes to little-endian signed 16-bit PCM."""
    table = ULAW_DECODE if law == "ulaw" else ALAW_DECODE
    return _pcm(array("h", (table[b] for b in data)))


def ulaw_to_alaw(data: bytes) -> bytes:
    """Transcode μ-law to A-law without going through PCM."""
    return data.translate(ULAW_TO_ALAW)
