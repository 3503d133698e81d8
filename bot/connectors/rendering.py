"""What the Slack and Teams connectors share when they render an answer with its citations."""

from __future__ import annotations

from typing import Any, Dict, Text

def answer_body(custom: Dict[Text, Any]) -> Text:
    """The answer without its plain-text source list (the channel shows the sources its own way):
    the action sends it as ``body`` next to the full ``text``."""
    return str(custom.get("body") or custom.get("text") or "")


def citation_place(c: Dict[Text, Any]) -> Text:
    """Title (year), section and page of a citation payload."""
    return ", ".join(p for p in [
        f"{c.get('title')} ({c.get('year')})" if c.get("year") else str(c.get("title")),
        f"avsnitt ”{c['section']}”" if c.get("section") else "",
        f"s. {c['page']}" if c.get("page") else "",
    ] if p)
