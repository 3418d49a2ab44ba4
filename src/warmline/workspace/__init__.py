"""The agent and supervisor workspace: pages, API and live updates for people taking conversations.

For now it holds the placeholder page the demo links to; the hand-off issue fills it in.
"""
