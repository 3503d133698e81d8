"""Turn text extracted from PDFs into clean blocks: headings, prose paragraphs and tables.

Extracted text has lines broken at the page width, words split across lines (with or without a
hyphen), words split inside a line where the PDF had a soft hyphen, page numbers, running
headers, chart residue, footnotes and a dropped "fi" ligature. ``clean_pages`` undoes that and
returns ``Block`` objects in reading order, each with the page it starts on (when known).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Literal

from . import lexicon

BlockKind = Literal["heading", "text", "table", "footnote"]

BULLET_RE = re.compile(r"^(?:[•●▪■◦·*>»–—-]|\d{1,2}[.)])\s+")
NUMBERED_HEADING_RE = re.compile(r"^\d{1,2}(?:\.\d{1,2})*\.?\s+\S")
NUMERIC_RESIDUE_RE = re.compile(r"^[\d\s%.,:;()\-–+/kr]*$")
URL_ONLY_RE = re.compile(r"^(?:https?://|www\.)\S*$")
DOT_LEADER_RE = re.compile(r"(?:\.\s?){4,}\s*\d+\s*$")
CHAPTER_MARK_RE = re.compile(r"^(?:KAPITEL|Kapitel|KAP\.)\s+\d+$")
FOOTNOTE_RE = re.compile(r"^Not\.\s*\d+\b")
TERMINAL = tuple(".!?:;”\"»)")
WORD_RE = re.compile(r"[A-Za-zÅÄÖåäöÉéÜü]+")
TOKEN_SPLIT_RE = re.compile(r"(\s+)")
HEADING_NEVER_ENDS = {
    "och", "att", "som", "i", "på", "för", "av", "med", "en", "ett", "till", "om", "från", "den", "det", "de",
    "eller", "samt", "vid", "under", "är", "har", "kan", "ska", "the", "of", "and",
}
CONJUNCTIONS = {"och", "eller", "samt", "respektive", "resp.", "som", "till", "men"}


@dataclass
class Line:
    text: str
    page: int | None
    page_start: bool


@dataclass
class Block:
    kind: BlockKind
    text: str
    page: int | None


def normalize_chars(text: str) -> str:
    """Unicode clean-up that never changes meaning: ligatures, odd spaces, soft hyphens."""
    text = unicodedata.normalize("NFC", text)
    for lig, repl in {"ﬁ": "fi", "ﬂ": "fl", "ﬀ": "ff", "ﬃ": "ffi", "ﬄ": "ffl"}.items():
        text = text.replace(lig, repl)
    text = text.replace("\u00ad", "").replace("\u00a0", " ").replace("\u2009", " ").replace("\t", " ")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    return text


def _is_double_spaced(lines: list[str]) -> bool:
    """True when nearly every text line is followed by one empty line (a layout artefact)."""
    nonblank = sum(1 for line in lines if line.strip())
    alternating = sum(
        1 for i in range(1, len(lines) - 1) if lines[i] == "" and lines[i - 1].strip() and lines[i + 1].strip()
    )
    return nonblank > 20 and alternating / nonblank > 0.5


def _group_lines(pages: Iterable[tuple[int | None, str]]) -> list[list[Line]]:
    """Split normalised page texts into groups of consecutive lines separated by blank lines."""
    raw: list[tuple[str, int | None, bool]] = []
    for page, text in pages:
        first = True
        for line in text.split("\n"):
            starts_page = first or (line.startswith(" ") and not line.startswith("  "))
            raw.append((line.rstrip(), page, starts_page and bool(line.strip())))
            if line.strip():
                first = False
        raw.append(("", page, False))
    double = _is_double_spaced([r[0] for r in raw])
    groups: list[list[Line]] = [[]]
    for text, page, starts_page in raw:
        if text == "" and double:
            continue  # the empty line that follows every line; whitespace-only lines still break
        if not text.strip():
            if groups[-1]:
                groups.append([])
            continue
        groups[-1].append(Line(text.strip(), page, starts_page))
    return [g for g in groups if g]


def _line_width(groups: list[list[Line]]) -> int:
    lengths = sorted(len(line.text) for g in groups for line in g)
    if not lengths:
        return 80
    return max(30, lengths[int(len(lengths) * 0.9)])


def _line_key(text: str) -> str:
    """Lines compared without case and spaces: "FAMNA IOP – SÅ" and "FAMNAIOP – SÅ" are one header."""
    return re.sub(r"\s+", "", text).lower()


def _repeated_lines(groups: list[list[Line]], width: int) -> set[str]:
    """Running headers and footers: short lines that recur three or more times (a full-width line
    that recurs is the start of a recurring sentence, not a header)."""
    counts = Counter(_line_key(line.text) for g in groups for line in g if len(line.text) < min(100, 0.7 * width))
    return {
        key for key, n in counts.items()
        if n >= 3 and len(key) >= 4 and not BULLET_RE.match(key) and not key.endswith((".", ":"))
    }


RUNNING_HEADER_RE = re.compile(r"^[^.!?]{2,80}\s\|\s[^.!?]{2,80}$")


def _is_residue(text: str, repeated: set[str]) -> bool:
    return bool(
        NUMERIC_RESIDUE_RE.match(text)
        or RUNNING_HEADER_RE.match(text)
        or URL_ONLY_RE.match(text)
        or DOT_LEADER_RE.search(text)
        or CHAPTER_MARK_RE.match(text)
        or _line_key(text) in repeated
    )


def _is_table_row(text: str) -> bool:
    return bool(re.search(r"\s\d[\d\s]*%?$", text)) and len(text) < 80


def _is_toc_group(group: list[Line]) -> bool:
    """A table of contents: most lines are "page number + title" (page numbers rising with gaps,
    unlike a numbered list 1, 2, 3) or "title + page number"."""
    leading = [int(m.group(1)) for line in group if (m := re.match(r"^(\d{1,3})\s+[A-ZÅÄÖ]", line.text)) and not line.text.endswith(".")]
    trailing = sum(1 for line in group if re.search(r"[A-Za-zåäö]\s+\d{1,3}$", line.text))
    if len(group) < 3:
        return False
    rising_with_gaps = len(leading) >= 3 and all(b > a for a, b in zip(leading, leading[1:])) and any(b - a > 1 for a, b in zip(leading, leading[1:]))
    return (rising_with_gaps and len(leading) >= 0.6 * len(group)) or trailing >= 0.6 * len(group)


NUMBERED_ITEM_RE = re.compile(r"^\d{1,2}[.)]\s+")
NUMBERED_TITLE_RE = re.compile(r"^\d{1,2}\.\s+[A-ZÅÄÖ]")


def _looks_like_heading(text: str, width: int, next_text: str | None = None) -> bool:
    """Short, title-like line. A numbered line ("5. Utforma avtal") is a heading when it is short
    and what follows is prose, and a list item when another numbered item follows."""
    if len(text) > min(100, 0.8 * width) or len(text.split()) > 14 or len(text) < 3:
        return False
    if text.endswith((".", ",", ";", ":", "-", "–")) or text.startswith(("”", '"', "(")):
        return False
    if next_text is not None and re.match(r"^\d{1,3}\.?\s", text) and re.match(r"^\d{1,3}\.?\s", next_text):
        return False  # one item of a numbered list ("2 Region Örebro, Forshaga", "3 Stockholm stad")
    if BULLET_RE.match(text):
        numbered_title = (
            NUMBERED_ITEM_RE.match(text) and len(text) < 0.7 * width
            and next_text is not None and not BULLET_RE.match(next_text) and next_text[:1].isupper()
        )
        if not numbered_title:
            return False
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 3 or text.split()[-1].lower() in HEADING_NEVER_ENDS:
        return False
    if re.search(r"\s(?:\d[\d\s%]*|[Xx](?:\s[Xx])*)$", text) or re.match(r"^\d{2,3}\s", text):
        return False  # a table row ("Uddevalla X X X", "Totalt 53 24 29") or a contents line ("22 Argument")
    if NUMBERED_HEADING_RE.match(text):
        return not re.match(r"^\d+\s+(?:kr|procent|%|miljoner|st)\b", text)
    return text[0].isupper()


def _is_strong_heading(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    upper = sum(1 for c in letters if c.isupper())
    return bool(NUMBERED_HEADING_RE.match(text)) or (len(letters) >= 5 and upper / len(letters) > 0.8)


def _segment_group(group: list[Line], width: int) -> list[tuple[BlockKind, list[Line]]]:
    """Split one group of lines into headings, tables and prose paragraphs."""
    out: list[tuple[BlockKind, list[Line]]] = []
    short = 0.75 * width
    i = 0
    current: list[Line] = []

    def flush(kind: BlockKind = "text") -> None:
        nonlocal current
        if current:
            out.append((kind, current))
            current = []

    table_rows = sum(1 for line in group if _is_table_row(line.text))
    if len(group) >= 3 and table_rows >= 0.6 * len(group):
        return [("table", group)]

    while i < len(group):
        line = group[i]
        nxt = group[i + 1] if i + 1 < len(group) else None
        if current and BULLET_RE.match(line.text):
            flush()  # a list item or numbered line always starts a block of its own
        # a numbered heading wrapped over the last lines of the group: "1. Identifiera en
        # samhällsutmaning som / kräver samarbete mellan idéburen aktör / eller civilsamhället ..."
        rest = group[i:]
        if (
            not current and 1 < len(rest) <= 3 and NUMBERED_TITLE_RE.match(line.text)
            and all(r.text[:1].islower() and len(r.text) < short for r in rest[1:])
            and not rest[-1].text.endswith((".", ",", ";", ":"))
        ):
            out.append(("heading", rest))
            break
        # a title wrapped over two short lines: "Rekommendation från UDD gällande / socialt hållbar upphandling"
        after = group[i + 2] if i + 2 < len(group) else None
        if (
            not current and nxt is not None and line.text[:1].isupper() and nxt.text[:1].islower()
            and len(line.text) < 0.6 * width and len(nxt.text) < 0.6 * width
            and len((line.text + " " + nxt.text).split()) <= 12
            and not line.text.endswith(TERMINAL + (",",)) and not nxt.text.endswith(TERMINAL + (",",))
            and nxt.text.split()[-1].lower() not in HEADING_NEVER_ENDS
            and not BULLET_RE.match(line.text)
            and (after is None or after.page_start or after.text[:1].isupper())
        ):
            out.append(("heading", [line, nxt]))
            i += 2
            continue
        strong = _is_strong_heading(line.text)
        after_break = (
            not current or current[-1].text.endswith(TERMINAL) or _is_table_row(current[-1].text) or line.page_start
        )
        # a short question between paragraphs is a heading too: "Hur fungerar IOP?"
        question = (
            line.text.endswith("?") and len(line.text.split()) <= 8 and nxt is not None
            and (nxt.text[:1].isupper() or bool(BULLET_RE.match(nxt.text)))
        )
        if (not current or ((strong or question) and after_break)) and _looks_like_heading(line.text, width, nxt.text if nxt else None):
            flush()
            next_starts_new = nxt is None or nxt.text[:1].isupper() or bool(BULLET_RE.match(nxt.text))
            if strong or next_starts_new:
                heading = [line]
                # a heading wrapped over two short lines ("2 KARTLÄGGNING AV ... / FÖRETAG OCH ...")
                while (
                    nxt is not None and strong and _is_strong_heading(nxt.text) is False
                    and nxt.text.isupper() and len(nxt.text) < width
                ):
                    heading.append(nxt)
                    i += 1
                    nxt = group[i + 1] if i + 1 < len(group) else None
                out.append(("heading", heading))
                i += 1
                continue
        current.append(line)
        ends = line.text.endswith(TERMINAL) and len(line.text) < short
        if nxt is not None and ends and (nxt.text[:1].isupper() or BULLET_RE.match(nxt.text) or nxt.text[:1] in "”\"-–"):
            flush()
        i += 1
    flush()
    return out


def _last_word(text: str) -> str:
    m = re.search(r"([A-Za-zÅÄÖåäöÉéÜü]+)-?$", text)
    return m.group(1) if m else ""


def _first_word(text: str) -> str:
    m = re.match(r"([A-Za-zÅÄÖåäöÉéÜü]+)", text)
    return m.group(1) if m else ""


def join_lines(lines: list[str], seen: frozenset[str] | set[str] = frozenset()) -> str:
    """Join wrapped lines, repairing words split at the line end with or without a hyphen."""
    text = ""
    for line in lines:
        line = line.strip()
        if not text:
            text = line
            continue
        left, right = _last_word(text), _first_word(line)
        if text.endswith("-") and left and len(text) >= 2 and text[-2].isalpha():
            if line.split(" ", 1)[0].lower() in CONJUNCTIONS:
                text += " " + line  # suspended compound: "finansierings- och samverkansformer"
            elif not left[-1].islower() or not right or not right[0].islower():
                text += line  # "EU-" + "regler"
            elif lexicon.is_word(left + right, 1.0) or not lexicon.is_word(left) or (left + right).lower() in seen:
                text = text[:-1] + line
            else:
                text += line  # keep the hyphen: "icke-vinstdrivande"
        elif left and right and text[-1].isalpha() and lexicon.should_join(left, right, True, seen):
            text += line
        else:
            text += " " + line
    return text


def repair_inline(text: str, seen: frozenset[str] | set[str] = frozenset()) -> str:
    """Repair words split inside a line ("samhälls nyttiga", "fnans i erats") and ligatures."""
    parts = TOKEN_SPLIT_RE.split(text)
    words = parts[0::2]
    spaces = parts[1::2]
    out_words: list[str] = []
    out_spaces: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        while i + 1 < len(words) and spaces[i] == " ":
            nxt = words[i + 1]
            left, right = word, nxt
            if left.isalpha() and lexicon.should_join(left, right.rstrip(".,;:!?)”"), False, seen):
                word = left + right
                i += 1
                continue
            # three pieces around a tiny middle piece: "fnans i erats"
            if (
                i + 2 < len(words) and spaces[i + 1] == " " and left.isalpha() and len(nxt) <= 2
                and nxt.isalpha() and nxt.islower() and not lexicon.is_word(left)
            ):
                third = words[i + 2].rstrip(".,;:!?)”")
                candidate = lexicon.repair_ligature((left + nxt + third).lower())
                if third.isalpha() and third.islower() and lexicon.is_word(candidate, 1.5):
                    word = left + nxt + words[i + 2]
                    i += 2
                    continue
            break
        out_words.append(word)
        if i < len(spaces):
            out_spaces.append(spaces[i])
        i += 1
    fixed = [WORD_RE.sub(lambda m: lexicon.repair_ligature(m.group(0)), w) for w in out_words]
    result = "".join(w + (out_spaces[k] if k < len(out_spaces) else "") for k, w in enumerate(fixed))
    return result


def tidy(text: str) -> str:
    """Final touches: footnote markers, dropped hyphens after abbreviations, spacing."""
    text = re.sub(r"(?<=[a-zåäö]{2}[.,;:)])\d{1,2}(?=\s|$)", "", text)  # "processer.5"
    text = re.sub(r"(?<=[a-zåäö]{4})\d{1,2}(?=[\s.,;:)]|$)", "", text)  # "Kolada12"
    text = re.sub(r"\b([A-ZÅÄÖ]{2,})([a-zåäö]{3,})\b", r"\1-\2", text)  # "EUkommissionen"
    text = re.sub(r"\b((?:19|20)\d\d)([a-zåäö]{3,})\b", r"\1-\2", text)  # "2030arbete"
    text = re.sub(r"\s+([,.;:!?)])", r"\1", text)
    text = re.sub(r"([(])\s+", r"\1", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def document_vocabulary(pages: Iterable[tuple[int | None, str]]) -> frozenset[str]:
    """Words of six letters or more that the (normalised) document spells whole somewhere."""
    words: set[str] = set()
    for _, text in pages:
        for w in WORD_RE.findall(text):
            if len(w) >= 6:
                words.add(w.lower())
    return frozenset(w for w in words if lexicon.is_word(w, 1.0))


def clean_pages(pages: list[tuple[int | None, str]]) -> list[Block]:
    """Clean extracted page texts into blocks in reading order."""
    pages = [(page, normalize_chars(text)) for page, text in pages]
    groups = _group_lines(pages)
    width = _line_width(groups)
    repeated = _repeated_lines(groups, width)
    seen = document_vocabulary(pages)
    blocks: list[Block] = []
    after_chart = False
    for group in groups:
        kept: list[Line] = []
        footnotes: list[list[Line]] = []
        in_footnote = False
        numeric = 0
        for line in group:
            if FOOTNOTE_RE.match(line.text):
                in_footnote = True
                footnotes.append([line])
                continue
            if in_footnote:
                if line.page_start or BULLET_RE.match(line.text):
                    in_footnote = False
                elif not _is_residue(line.text, repeated):
                    footnotes[-1].append(line)
                    continue
            if _is_residue(line.text, repeated):
                numeric += bool(NUMERIC_RESIDUE_RE.match(line.text))
                continue
            kept.append(line)
        for note in footnotes:  # footnotes carry content too; each becomes a paragraph of its own
            text = tidy(repair_inline(join_lines([line.text for line in note], seen), seen))
            blocks.append(Block("footnote", text, note[0].page))
        if not kept:
            after_chart = after_chart or numeric > 0
            continue
        if _is_toc_group(kept):
            continue
        # chart residue: labels and legends left around (or after) dropped numbers
        def is_label(line: Line) -> bool:
            return len(line.text) < 0.75 * width and not line.text.endswith(".") and not _is_strong_heading(line.text)

        if (numeric or after_chart) and all(is_label(line) for line in kept):
            continue
        if numeric or after_chart:  # a legend left just before text that continues from the last page
            while len(kept) > 1 and is_label(kept[0]) and kept[1].page_start and kept[1].text[:1].islower():
                kept.pop(0)
        after_chart = False
        if blocks and blocks[-1].kind == "table" and all(_is_table_row(line.text) for line in kept):
            # rows after a blank line ("Totalt 24 100%") still belong to the table above
            blocks[-1] = Block("table", blocks[-1].text + "\n" + "\n".join(tidy(line.text) for line in kept), blocks[-1].page)
            continue
        for kind, lines in _segment_group(kept, width):
            page = lines[0].page
            if kind == "table":
                text = "\n".join(tidy(line.text) for line in lines)
            elif kind == "heading":
                text = tidy(repair_inline(join_lines([line.text for line in lines])))
            else:
                text = tidy(repair_inline(join_lines([line.text for line in lines], seen), seen))
            if text:
                blocks.append(Block(kind, text, page))
    return blocks
