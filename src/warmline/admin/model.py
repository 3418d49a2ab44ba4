"""Administration vocabulary: geographies, roles, extensions and the connection's states."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Geography(StrEnum):
    """Where an environment's data lives."""

    UNITED_STATES = "United States"
    CANADA = "Canada"
    EUROPE = "Europe"
    ASIA = "Asia"
    UNITED_KINGDOM = "United Kingdom"
    AUSTRALIA = "Australia"
    INDIA = "India"
    JAPAN = "Japan"
    SOUTH_AMERICA = "South America"
    SWITZERLAND = "Switzerland"
    FRANCE = "France"
    GERMANY = "Germany"


# Voice hand-off works only here (seed doc, "Voice-based capabilities"); elsewhere it is refused with
# this list instead of failing silently.
VOICE_GEOGRAPHIES = frozenset(
    {
        Geography.UNITED_STATES,
        Geography.CANADA,
        Geography.EUROPE,
        Geography.ASIA,
        Geography.UNITED_KINGDOM,
        Geography.AUSTRALIA,
    }
)

SYSTEM_ADMINISTRATOR = "administrator"


class ConnectionState(StrEnum):
    """A bot's omnichannel connection."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class Extension:
    """An installable extension and what it needs first."""

    name: str
    title: str
    requires: tuple[str, ...]
    adds: str


EXTENSIONS: dict[str, Extension] = {
    e.name: e
    for e in (
        Extension(
            "telephony",
            "Telephony extension",
            (),
            "voice actions and bot.CustomerPhoneNumber / bot.OrganizationPhoneNumber",
        ),
        Extension(
            "omnichannel-bot",
            "Omnichannel bot extension",
            (),
            "hand-off variables (va_*, msdyn_*) and the transfer-to-agent action",
        ),
        Extension(
            "omnichannel-voice-bot",
            "Omnichannel voice bot extension",
            ("telephony", "omnichannel-bot"),
            "voice hand-off to agents",
        ),
    )
}
INSTALL_ORDER = ("telephony", "omnichannel-bot", "omnichannel-voice-bot")


def required_extensions(voice: bool) -> tuple[str, ...]:
    """What hand-off needs: messaging only, or messaging and voice (in install order)."""
    return INSTALL_ORDER if voice else ("omnichannel-bot",)


@dataclass(frozen=True)
class Actor:
    """Who is doing an administrative action."""

    name: str
    roles: tuple[str, ...]

    @property
    def is_system_administrator(self) -> bool:
        """System Administrators may connect bots and install extensions."""
        return SYSTEM_ADMINISTRATOR in self.roles


@dataclass(frozen=True)
class Check:
    """One line of a connection refresh."""

    name: str
    ok: bool
    detail: str
