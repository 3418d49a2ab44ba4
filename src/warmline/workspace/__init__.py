"""The agent and supervisor workspace: sign-in, pages, the JSON API and the live WebSocket feed.

Agents take offers, talk to customers, keep private notes, transfer, consult, end and wrap up;
supervisors watch queues and agents, monitor conversations and force-assign waiting ones.
"""
