"""Voice: phone calls as conversations — SIP signalling, RTP media, speech out and in, DTMF, call control.

Hand-written on asyncio and the standard library because no SIP stack on PyPI fits: ``voip`` needs
Python 3.14, is AGPL and has neither RFC 4733 DTMF nor REFER; ``pyVoIP`` is GPL, thread-based, must
REGISTER first, sends every message to its registrar (ignoring Via) and has no REFER, OPTIONS or
INFO (see ``docs/voice.md``). A call is a Warmline conversation on channel ``voice``.
"""
