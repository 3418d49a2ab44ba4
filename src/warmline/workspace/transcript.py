"""The conversation as the agent sees it: transcript entries, context variables, bot variables.

Text is rendered here, once, for the page and the live stream alike: Markdown through markdown-it
with raw HTML disabled (so a customer or bot cannot inject markup), cards reduced to their text
and fields. The page inserts ``html`` as is and everything else as text.
"""

from __future__ import annotations

import html
import json
from typing import Any

from markdown_it import MarkdownIt

from warmline.activity import ADAPTIVE_CARD, Activity, Attachment
from warmline.bot.topic_bot import fx_type
from warmline.conversations.model import Role, StoredActivity

HANDOFF_EVENT = "handoff.initiate"
SURVEY_EVENT = "warmline.survey.response"
HERO_CARDS = ("application/vnd.microsoft.card.hero", "application/vnd.microsoft.card.thumbnail")
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def render_markdown(text: str) -> str:
    """Safe HTML for Markdown text (raw HTML is escaped, unsafe link schemes are refused)."""
    rendered: str = _MARKDOWN.render(text)
    return rendered


def render_plain(text: str) -> str:
    """Escaped text with its line breaks."""
    return "<p>" + html.escape(text).replace("\n", "<br>") + "</p>"


def is_private(activity: Activity) -> bool:
    """An agents-only activity (private note, consult message, internal record)."""
    warmline = (activity.channel_data or {}).get("warmline")
    return isinstance(warmline, dict) and warmline.get("visibility") == "agents"


def _card_lines(element: Any, lines: list[str]) -> None:
    """Walk an adaptive card's body and actions, keeping what a person reads."""
    if isinstance(element, list):
        for item in element:
            _card_lines(item, lines)
        return
    if not isinstance(element, dict):
        return
    kind = element.get("type")
    if kind in ("TextBlock", "TextRun") and element.get("text"):
        lines.append(str(element["text"]))
    elif kind == "RichTextBlock":
        lines.append(
            "".join(str(r.get("text", "")) for r in element.get("inlines", []) if isinstance(r, dict))
        )
    elif kind == "FactSet":
        for fact in element.get("facts", []):
            if isinstance(fact, dict):
                lines.append(f"{fact.get('title', '')}: {fact.get('value', '')}")
    elif isinstance(kind, str) and kind.startswith("Input."):
        label = element.get("label") or element.get("placeholder") or element.get("id") or kind
        value = element.get("value")
        lines.append(f"[{label}]" + (f" {value}" if value not in (None, "") else ""))
        for choice in element.get("choices", []):
            if isinstance(choice, dict):
                lines.append(f"  ○ {choice.get('title', choice.get('value', ''))}")
    elif isinstance(kind, str) and kind.startswith("Action.") and element.get("title"):
        lines.append(f"[{element['title']}]")
    for key in ("body", "items", "columns", "card"):
        if key in element:
            _card_lines(element[key], lines)
    if "actions" in element:
        _card_lines(element["actions"], lines)


def attachment_view(attachment: Attachment) -> dict[str, Any]:
    """An attachment as the agent sees it: a card's text, or a file's name and link."""
    view: dict[str, Any] = {"contentType": attachment.content_type, "name": attachment.name}
    content = attachment.content
    if attachment.content_type == ADAPTIVE_CARD and isinstance(content, dict):
        lines: list[str] = []
        _card_lines(content, lines)
        view["kind"], view["lines"] = "card", lines
    elif attachment.content_type in HERO_CARDS and isinstance(content, dict):
        lines = [str(content[k]) for k in ("title", "subtitle", "text") if content.get(k)]
        lines += [f"[{b.get('title')}]" for b in content.get("buttons", []) if isinstance(b, dict)]
        view["kind"], view["lines"] = "card", lines
    elif attachment.content_type == "application/json" and attachment.name == "Transcript":
        count = len(content.get("activities", [])) if isinstance(content, dict) else 0
        view["kind"], view["lines"] = "card", [f"Transcript attachment ({count} activities)"]
    else:
        view["kind"] = "file"
        url = attachment.content_url or ""
        view["url"] = url if url.startswith(("https://", "http://", "/")) else None
    return view


def _speaker(stored: StoredActivity) -> str:
    if is_private(stored.activity):
        return "note"
    return {Role.CUSTOMER: "customer", Role.BOT: "bot", Role.AGENT: "agent", Role.SYSTEM: "system"}[
        stored.role
    ]


def _sender_name(stored: StoredActivity) -> str | None:
    sender = stored.activity.from_
    if sender is None:
        return None
    return sender.name or (None if stored.role is Role.CUSTOMER else sender.id)


def transcript_entry(stored: StoredActivity) -> dict[str, Any] | None:
    """One line of the agent's transcript, or None for activities a person need not see."""
    activity = stored.activity
    base: dict[str, Any] = {
        "seq": stored.seq,
        "id": activity.id,
        "role": _speaker(stored),
        # Customers' ids are opaque (dl_…); show a name only when there is one.
        "from": _sender_name(stored),
        "timestamp": activity.timestamp.isoformat() if activity.timestamp else None,
    }
    if activity.type == "message":
        text = activity.text or ""
        plain = stored.role is Role.CUSTOMER or activity.text_format == "plain"
        suggested = (activity.suggested_actions or {}).get("actions") or []
        return {
            **base,
            "kind": "message",
            "text": text,
            "html": (render_plain(text) if plain else render_markdown(text)) if text else "",
            "attachments": [attachment_view(a) for a in activity.attachments or []],
            "suggested": [str(a.get("title") or a.get("value")) for a in suggested if isinstance(a, dict)],
        }
    if activity.type == "event" and activity.name == HANDOFF_EVENT:
        value = activity.value if isinstance(activity.value, dict) else {}
        message = value.get("va_AgentMessage")
        text = "The bot handed the conversation over" + (f": {message}" if message else ".")
        return {**base, "role": "system", "kind": "handoff", "text": text, "html": render_plain(text)}
    if activity.type == "event" and activity.name == SURVEY_EVENT:
        value = activity.value if isinstance(activity.value, dict) else {}
        rating = value.get("rating")
        text = f"Survey answer: {rating}/5" if rating else f"Survey answer: {value.get('text', '')}"
        return {**base, "role": "system", "kind": "survey", "text": text, "html": render_plain(text)}
    if activity.type == "endOfConversation":
        text = "The chat ended for the customer."
        return {**base, "role": "system", "kind": "end", "text": text, "html": render_plain(text)}
    return None


def transcript(activities: list[StoredActivity]) -> list[dict[str, Any]]:
    """Every entry worth showing, in log order."""
    return [entry for entry in (transcript_entry(s) for s in activities) if entry is not None]


def show(value: Any) -> str:
    """A variable's value as text for the panel."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def context_panel(context: dict[str, Any]) -> list[dict[str, Any]]:
    """Host-page context variables, the ones marked ``isDisplayable`` first."""
    items: list[dict[str, Any]] = []
    for name, entry in context.items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        displayable = bool(entry.get("isDisplayable")) if isinstance(entry, dict) else False
        items.append({"name": name, "value": show(value), "displayable": displayable})
    items.sort(key=lambda item: (not item["displayable"], str(item["name"]).lower()))
    return items


def bot_variables(handoff: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The bot's variables from the hand-off (``{value, type}`` entries, or bare values), typed."""
    if not handoff:
        return []
    items = []
    scopes = handoff.get("variables")
    for scope in ("global", "topic"):
        variables = scopes.get(scope) if isinstance(scopes, dict) else None
        if not isinstance(variables, dict):
            continue
        for name, entry in sorted(variables.items()):
            if isinstance(entry, dict) and "value" in entry:
                value, kind = entry.get("value"), str(entry.get("type") or fx_type(entry.get("value")))
            else:
                value, kind = entry, fx_type(entry)
            items.append({"scope": scope, "name": name, "value": show(value), "type": kind})
    return items


def va_context(handoff: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ``va_*`` and ``msdyn_*`` names of the hand-off (what the bot knew about the chat)."""
    if not handoff:
        return []
    return [
        {"name": name, "value": show(value)}
        for name, value in handoff.items()
        if name.startswith(("va_", "msdyn_")) and value not in (None, "", [])
    ]
