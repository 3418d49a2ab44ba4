"""Analytics: what bots and queues achieved, computed from the stored conversations.

``reads`` gathers the facts (conversations, activities, dialog state, offers, transitions) of an
environment; ``metrics`` turns them into rates and times with pure functions; ``charts`` draws
them as inline SVG for the admin analytics page (no scripts, no CDN).
"""
