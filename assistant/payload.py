"""The one contract for what channels receive in a bot message's ``custom``.

Standard library only: the channel connectors run inside Rasa's own environment and import this
module there. Every message that carries an answer (or an honest "the documents do not cover
this") has ``custom`` of type :class:`AnswerPayload`; the web chat, Slack, Teams and REST clients
read it through the helpers below, and every place that names a citation uses
:func:`citation_place`.
"""

from __future__ import annotations

from typing import Any, List, Literal, Mapping, Optional, TypedDict

Coverage = Literal["full", "partial", "none"]
COVERAGES = ("full", "partial", "none")


class CitationPayload(TypedDict):
    number: int  # [n] in the answer text
    paragraph_id: str
    doc_id: str
    title: str
    year: Optional[int]
    section: Optional[str]
    page: Optional[int]
    text: str  # the whole cited paragraph
    quote: str  # the sentence(s) quoted from it
    score: float


class AnswerPayload(TypedDict):
    answered: bool  # False only when coverage is "none" (or nothing could be searched)
    coverage: Coverage  # full: the documents answer; partial: they answer part / nearby; none: they do not
    missing: List[str]  # what the documents do not cover, as the user wrote it (may be empty)
    citations: List[CitationPayload]
    language: str  # "sv" | "en"
    text: str  # the whole answer for plain-text channels, source list included
    body: str  # the answer without the plain-text source list, for channels that render citations


def answer_payload(*, answered: bool, coverage: Coverage, citations: List[CitationPayload], language: str,
                   text: str, body: Optional[str] = None, missing: Optional[List[str]] = None) -> AnswerPayload:
    if coverage not in COVERAGES:
        raise ValueError(f"coverage must be one of {COVERAGES}, not {coverage!r}")
    return AnswerPayload(answered=answered, coverage=coverage, missing=list(missing or []), citations=citations,
                         language=language, text=text, body=text if body is None else body)


def is_answer(custom: Any) -> bool:
    """Whether a message's ``custom`` is an :class:`AnswerPayload`."""
    return isinstance(custom, Mapping) and "answered" in custom and isinstance(custom.get("citations"), list)


def body_of(custom: Mapping[str, Any]) -> str:
    """The answer without its plain-text source list (channels show the sources their own way)."""
    return str(custom.get("body") or custom.get("text") or "")


def coverage_of(custom: Mapping[str, Any]) -> Coverage:
    value = custom.get("coverage")
    if value in COVERAGES:
        return value  # type: ignore[return-value]
    return "full" if custom.get("answered") else "none"


def citation_place(c: Mapping[str, Any], language: str = "sv") -> str:
    """Title (year), section and page of a citation: the one way every channel names a source."""
    en = language == "en"
    year = c.get("year")
    parts = [f"{c.get('title')} ({year})" if year else str(c.get("title"))]
    if c.get("section"):
        parts.append(f"{'section' if en else 'avsnitt'} ”{c['section']}”")
    if c.get("page"):
        parts.append(f"{'p.' if en else 's.'} {c['page']}")
    return ", ".join(parts)


def coverage_label(coverage: Coverage, language: str = "sv") -> str:
    """A short visible label for answers that are not a full answer ("" for full)."""
    en = language == "en"
    if coverage == "partial":
        return "Partly covered by the documents" if en else "Delvis i dokumenten"
    if coverage == "none":
        return "Not in the documents" if en else "Finns inte i dokumenten"
    return ""

