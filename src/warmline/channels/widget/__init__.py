"""Chat widgets (Omnichannel's "chat widget"): embed code, widget.js, host-page context and SSO.

A widget says where it may be embedded, how a host page's sign-in token is checked and which
context variables a page may set; it also owns the Direct Line secret its conversations use.
"""
