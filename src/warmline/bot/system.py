"""The system topics every bot gets (greeting, fallback, escalate, end of conversation, …).

They ship as YAML beside this module so an author can copy one into a bot's ``topics/`` folder
and edit it; a bot's own topic of the same name replaces the shipped one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from warmline.bot.loader import Problem, load_topic_file
from warmline.bot.topics import Topic

FOLDER = Path(__file__).with_name("system_topics")


@cache
def system_topics() -> dict[str, Topic]:
    """The shipped system topics by name (loaded once; they are validated by the test suite)."""
    problems: list[Problem] = []
    topics = {}
    for path in sorted(FOLDER.glob("*.yaml")):
        topic = load_topic_file(path, problems, display=f"<system>/{path.name}")
        if topic is not None:
            topics[topic.name] = topic
    if problems:
        raise RuntimeError("shipped system topics are invalid: " + "; ".join(map(str, problems)))
    return topics
