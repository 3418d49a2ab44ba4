"""Conversations, their participants and the ordered activity log every channel reads and writes.

Actions here are the only writers of conversations and activities; reads are ``get_``/``list_``.
Sequence numbers are allocated per conversation and double as the Direct Line watermark.
"""
