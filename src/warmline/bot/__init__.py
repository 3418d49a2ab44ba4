"""The bot side of a conversation: the interface every bot implements and the built-in bots.

The topic runtime (YAML topics, variables, publishing) implements the same ``Bot`` protocol,
so channels never care which bot answers.
"""

from warmline.bot.base import Bot, BotReply, Turn
from warmline.bot.echo import EchoBot

__all__ = ["Bot", "BotReply", "EchoBot", "Turn"]
