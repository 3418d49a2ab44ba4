"""The variables a topic can read besides its own: ``System.*``, ``bot.*`` and omnichannel context.

Types are Power Fx type names checked by validation; values are filled per turn by the runtime.
"""

from __future__ import annotations

from warmline.bot.expressions import FxType

SYSTEM_VARIABLES: dict[str, FxType] = {
    "System.Activity.Text": FxType.TEXT,
    "System.Activity.Type": FxType.TEXT,
    "System.Activity.Name": FxType.TEXT,
    "System.Activity.Value": FxType.ANY,
    "System.Activity.ChannelData": FxType.ANY,
    "System.Activity.From.Name": FxType.TEXT,
    "System.Activity.Recipient.Name": FxType.TEXT,
    "System.Conversation.Id": FxType.TEXT,
    "System.Conversation.InTestMode": FxType.BOOLEAN,
    "System.Conversation.LocalTimeZone": FxType.TEXT,
    "System.Channel.Id": FxType.TEXT,
    "System.User.IsLoggedIn": FxType.BOOLEAN,
    "System.User.Id": FxType.TEXT,
    "System.User.DisplayName": FxType.TEXT,
    "System.Bot.Name": FxType.TEXT,
    "System.Bot.Id": FxType.TEXT,
    "System.FallbackCount": FxType.NUMBER,
    "System.Error.Message": FxType.TEXT,
    "System.Error.Code": FxType.TEXT,
    "System.LastMessage.Text": FxType.TEXT,
    "System.LastMessage.Id": FxType.TEXT,
    "System.Recognizer.TriggerMessage.Text": FxType.TEXT,
    "System.SignInReason": FxType.TEXT,
    "System.Agent.Notes": FxType.TEXT,
    "System.Agent.Name": FxType.TEXT,
    "System.Locale": FxType.TEXT,
}

BOT_VARIABLES: dict[str, FxType] = {
    # Caller ID and dialled number; empty on messaging (the seed's "Is Empty" channel test).
    "bot.CustomerPhoneNumber": FxType.TEXT,
    "bot.OrganizationPhoneNumber": FxType.TEXT,
}

# Omnichannel context variables a bot may read or set by using the exact name as a global.
OMNICHANNEL_PREFIXES = ("msdyn_", "va_")
AUTHENTICATION_VARIABLES = frozenset({"System.User.Id", "System.User.DisplayName", "System.User.IsLoggedIn"})


def is_omnichannel_name(name: str) -> bool:
    """True for ``Global.msdyn_*`` / ``Global.va_*``: names handed to the omnichannel on transfer."""
    short = name.split(".", 1)[-1]
    return short.startswith(OMNICHANNEL_PREFIXES) or short == "CloseOmnichannelConversation"


def fx_type_of(type_name: str) -> FxType:
    """A declared type name (``String``, ``Number``, ``Boolean``, ``DateTime``, ``Record``…) as FxType."""
    return {
        "string": FxType.TEXT,
        "text": FxType.TEXT,
        "number": FxType.NUMBER,
        "boolean": FxType.BOOLEAN,
        "datetime": FxType.DATETIME,
        "date": FxType.DATETIME,
        "record": FxType.RECORD,
        "table": FxType.TABLE,
    }.get(type_name.strip().lower(), FxType.ANY)
