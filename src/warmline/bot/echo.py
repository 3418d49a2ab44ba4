"""A minimal built-in bot: greets (by name when signed in), echoes, and says that it echoes."""

from __future__ import annotations

from warmline.activity import Activity, ActivityType, ChannelAccount
from warmline.bot.base import BotReply, Turn


class EchoBot:
    """Stands in for the topic runtime until a real bot is published."""

    def __init__(self, name: str = "Warmline Echo") -> None:
        self.name = name
        self.account = ChannelAccount(id="warmline-bot", name=name, role="bot")

    async def on_turn(self, turn: Turn) -> BotReply:
        activity = turn.activity
        if activity.type == ActivityType.CONVERSATION_UPDATE:
            return BotReply([self._say(self.greeting(turn), None)])
        if activity.type == ActivityType.MESSAGE:
            if activity.text:
                return BotReply([self._say(f"You said: {activity.text}", activity.id)])
            if activity.attachments:
                names = ", ".join(a.name or a.content_type for a in activity.attachments)
                return BotReply([self._say(f"You sent: {names}", activity.id)])
        return BotReply()

    def greeting(self, turn: Turn) -> str:
        """Welcome line; an SSO-authenticated customer is greeted by the name in their token."""
        customer = turn.conversation.customer
        who = f", {customer.name}" if customer.authenticated and customer.name else ""
        return f"Hello{who}! I'm {self.name}, a demo bot: I repeat whatever you type."

    def _say(self, text: str, reply_to: str | None) -> Activity:
        return Activity(
            type=ActivityType.MESSAGE,
            from_=self.account,
            text=text,
            text_format="plain",
            reply_to_id=reply_to,
        )
