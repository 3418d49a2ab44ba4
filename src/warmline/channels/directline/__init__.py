"""Direct Line 3.0: the REST and WebSocket protocol Microsoft's Web Chat and DirectLineJS speak.

Owns tokens, the ``/v3/directline`` routes and the activity stream; conversations and activities
themselves belong to ``warmline.conversations``.
"""
