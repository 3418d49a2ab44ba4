"""Which browser origins may embed a widget or call Direct Line.

Patterns allow ``*`` for a port or a subdomain label (``http://127.0.0.1:*``), which is how the
demo widget accepts any loopback page without listing ports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=512)
def _pattern(origin_pattern: str) -> re.Pattern[str]:
    parts = (re.escape(p) for p in origin_pattern.rstrip("/").split("*"))
    return re.compile("^" + "[^/]*".join(parts) + "$")


def origin_allowed(origin: str, patterns: Iterable[str]) -> bool:
    """True when ``origin`` matches one of ``patterns`` (exact, or with ``*`` wildcards)."""
    origin = origin.rstrip("/")
    return any(p == "*" or _pattern(p).match(origin) for p in patterns)
