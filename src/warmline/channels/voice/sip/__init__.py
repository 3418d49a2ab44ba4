"""SIP (RFC 3261) over UDP: messages, transactions with their retransmission timers, dialogs.

Small and typed on purpose: the parts a user agent server needs to answer, transfer and end calls,
and the client side a second call leg (an agent's phone) will need.
"""
