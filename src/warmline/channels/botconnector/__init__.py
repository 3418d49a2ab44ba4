"""External Bot Framework bots (Bring your own bot): Warmline is their channel.

Outbound activities to a bot's ``/api/messages``, its replies on the Bot Connector API, JWTs per app
registration both ways, and ``handoff.initiate`` / ``handoff.status`` with the omnichannel.
"""
