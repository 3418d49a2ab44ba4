"""Omnichannel routing: workstreams, queues, routing rules, agents, presence, capacity, offers.

Owns who gets a conversation after the bot lets go: route-to-queue rules pick the queue, the
assignment cycle picks the agent and offers the conversation, and stored timers move it on.
"""
