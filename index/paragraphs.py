"""Paragraphs: quotable units with a section, a page and an id that survives rebuilds."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .clean import BULLET_RE, Block

MAX_CHARS = 1200
TARGET_CHARS = 900
MIN_CHARS = 800
URL_RE = re.compile(r"(?:https?://|www\.)\S+")
SENTENCE_END_RE = re.compile(r"(?<=[.!?…”])\s+(?=[A-ZÅÄÖ0-9”\"•–-])")
BULLET_SPLIT_RE = re.compile(r"\s(?=[•▪●]\s)")


@dataclass(frozen=True)
class Paragraph:
    paragraph_id: str
    doc_id: str
    position: int
    section: str | None
    page: int | None
    text: str


ABBREVIATIONS = ("kap.", "t.ex.", "bl.a.", "s.", "st.", "nr.", "ca.", "jfr.", "resp.", "m.fl.", "dvs.", "p.", "prop.", "f.d.", "fr.o.m.", "t.o.m.", "o.s.v.", "m.m.")


def split_sentences(text: str) -> list[str]:
    parts = [p.strip() for p in SENTENCE_END_RE.split(text) if p.strip()]
    out: list[str] = []
    for part in parts:
        if out and out[-1].rsplit(" ", 1)[-1].lower() in ABBREVIATIONS:
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def sentence_units(text: str) -> list[str]:
    """The quotable sentences of a paragraph: :func:`split_sentences`, with list items apart.
    This is the one definition of a sentence that quotes, sentence embeddings and threshold rules use."""
    out: list[str] = []
    for sentence in split_sentences(text):
        out.extend(part.strip() for part in BULLET_SPLIT_RE.split(sentence) if part.strip())
    return out


def _split_long(text: str) -> list[str]:
    """Split a paragraph over MAX_CHARS at sentence ends into pieces of similar size."""
    if len(text) <= MAX_CHARS:
        return [text]
    sentences = split_sentences(text)
    pieces: list[str] = []
    n_pieces = -(-len(text) // TARGET_CHARS)
    target = len(text) / n_pieces
    current = ""
    for sentence in sentences:
        while len(sentence) > MAX_CHARS:  # a run-on "sentence": cut at a word boundary
            cut = sentence.rfind(" ", 0, TARGET_CHARS)
            cut = cut if cut > 0 else TARGET_CHARS
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and (len(current) + 1 + len(sentence) > MAX_CHARS or len(current) >= target):
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        if pieces and len(current) < MIN_CHARS // 2 and len(pieces[-1]) + len(current) < MAX_CHARS:
            pieces[-1] = f"{pieces[-1]} {current}"
        else:
            pieces.append(current)
    return pieces


@dataclass
class _Draft:
    section: str | None
    page: int | None
    text: str
    kind: str


def _is_lead_in(text: str) -> bool:
    """A short line that introduces a list: "... tolv kommuner:" or "I Umeå har projektet bidragit till"."""
    return len(text) < 300 and (text.endswith(":") or not text.endswith((".", "!", "?", "”", '"', ")")))


def _merge_small(drafts: list[_Draft]) -> list[_Draft]:
    """Merge short paragraphs (list items, one-line intros, quotes) with their neighbours.

    A list stays with the line that introduces it: the intro starts a new paragraph rather than
    ending the previous one, and when a long list must be split, each continuation starts with the
    intro again, so every paragraph of the list says what the list is about."""
    merged: list[_Draft] = []
    lead_in: str | None = None
    for i, d in enumerate(drafts):
        bullet = bool(BULLET_RE.match(d.text))
        next_is_bullet = i + 1 < len(drafts) and bool(BULLET_RE.match(drafts[i + 1].text))
        starts_list = not bullet and next_is_bullet and d.kind == "text" and _is_lead_in(d.text)
        if not bullet:
            lead_in = d.text if starts_list else None
        prev = merged[-1] if merged else None
        fits = (
            prev is not None
            and prev.section == d.section
            and prev.kind == d.kind == "text"
            and len(prev.text) + 1 + len(d.text) <= MAX_CHARS
        )
        if starts_list and prev is not None and fits and len(prev.text) >= MIN_CHARS // 2:
            merged.append(_Draft(d.section, d.page, d.text, d.kind))
            continue
        if fits and (
            len(prev.text) < MIN_CHARS
            or prev.text.endswith(":")
            or (bullet and len(d.text) < MIN_CHARS)
            or len(d.text) < MIN_CHARS // 2
        ):
            sep = "\n" if bullet else " "
            prev.text = f"{prev.text}{sep}{d.text}"
            continue
        if bullet and lead_in and not fits and len(lead_in) + 1 + len(d.text) <= MAX_CHARS:
            merged.append(_Draft(d.section, d.page, f"{lead_in}\n{d.text}", d.kind))
            continue
        merged.append(_Draft(d.section, d.page, d.text, d.kind))
    return merged


def searchable_text(text: str) -> str:
    """The text as the retrievers see it: links removed (their words are noise, not content)."""
    return re.sub(r"\s{2,}", " ", URL_RE.sub(" ", text)).strip()


def paragraph_id(doc_id: str, text: str, occurrence: int) -> str:
    """Stable id: the document id plus a hash of the paragraph's own text (and its repeat count)."""
    digest = hashlib.sha1(f"{occurrence}\x00{text}".encode("utf-8")).hexdigest()[:10]
    return f"{doc_id}-{digest}"


def build_paragraphs(doc_id: str, blocks: list[Block]) -> list[Paragraph]:
    """Group cleaned blocks into paragraphs of quotable size, each under its section heading."""
    drafts: list[_Draft] = []
    section: str | None = None
    for block in blocks:
        if block.kind == "heading":
            section = block.text
            continue
        for piece in _split_long(block.text):
            drafts.append(_Draft(section, block.page, piece, block.kind))
    # fragments of fewer than three words ("Vd", a signature, a footnote that is only a link)
    # carry nothing quotable
    drafts = [d for d in _merge_small(drafts) if len(searchable_text(d.text).split()) >= 3 + (d.kind == "footnote")]
    seen: dict[str, int] = {}
    out: list[Paragraph] = []
    for position, d in enumerate(drafts):
        occurrence = seen.get(d.text, 0)
        seen[d.text] = occurrence + 1
        out.append(Paragraph(paragraph_id(doc_id, d.text, occurrence), doc_id, position, d.section, d.page, d.text))
    return out
