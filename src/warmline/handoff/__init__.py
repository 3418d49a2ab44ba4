"""Hand-off: the moment a bot lets go of a conversation and routing gives it to a person.

Owns who answers a customer's activity (the ownership state machine), the hand-off payload
(transcript reference, typed variables, ``va_*``/``msdyn_*`` context, message to the agent) and
the route into the omnichannel queues; also handing a conversation back to the bot.
"""
