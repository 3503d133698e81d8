"""What the Slack and Teams connectors share when they render an answer with its citations."""

from __future__ import annotations

from typing import Any, Dict, Text

SOURCE_MARKERS = ("\nKällor:\n", "\nSources:\n")


def answer_body(text: Text) -> Text:
    """The answer without its plain-text source list (the channel shows the sources its own way)."""
    for marker in SOURCE_MARKERS:
        if marker in text:
            head, _, tail = text.partition(marker)
            hint = [line for line in tail.splitlines() if not line.startswith("[")]
            return "\n".join([head, *hint]).strip()
    return text


def citation_place(c: Dict[Text, Any]) -> Text:
    """Title (year), section and page of a citation payload."""
    return ", ".join(p for p in [
        f"{c.get('title')} ({c.get('year')})" if c.get("year") else str(c.get("title")),
        f"avsnitt ”{c['section']}”" if c.get("section") else "",
        f"s. {c['page']}" if c.get("page") else "",
    ] if p)
