"""Channels: adapters between a wire protocol (Direct Line, widget, SIP, Bot Connector) and Activity.

A channel holds no routing rules and changes state only through actions.
"""
