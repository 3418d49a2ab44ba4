"""Warmline: bots that hand conversations to live agents warm, with transcript and variables."""

__version__ = "0.1.0"
