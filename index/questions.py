"""Example questions: how people ask for a paragraph, written next to the documents.

knowledge/questions/*.jsonl holds one example per line, ``{"paragraph_id", "question", "lang"}``:
questions a user would type, in their own words, that the paragraph answers. The index embeds
them like queries, and a question that resembles an example finds that example's paragraph even
when it shares no word with the paragraph itself ("låna pengar" for a paragraph about
"kreditgivare"). Staff add lines here when the inbox shows a question that found nothing.

Paragraph ids are stable while a document is unchanged; an example whose paragraph is gone (the
document was edited or removed) is skipped and reported by ``python -m index build``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .documents import KnowledgeError

QUESTIONS_DIR = "questions"
MAX_QUESTION_CHARS = 500


@dataclass(frozen=True)
class ExampleQuestion:
    paragraph_id: str
    question: str
    lang: str
    source: str  # "file.jsonl:line", for messages


def question_files(knowledge_dir: Path) -> list[Path]:
    folder = knowledge_dir / QUESTIONS_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".jsonl" and not p.name.startswith("."))


def questions_hash(knowledge_dir: Path) -> str:
    """Identifies the example questions an index was built with (names and contents)."""
    h = hashlib.sha256()
    for path in question_files(knowledge_dir):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _parse_line(line: str, where: str) -> ExampleQuestion:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise KnowledgeError(f"{where}: not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise KnowledgeError(f"{where}: expected an object with paragraph_id and question")
    pid, question, lang = data.get("paragraph_id"), data.get("question"), data.get("lang", "sv")
    if not isinstance(pid, str) or not pid.strip():
        raise KnowledgeError(f"{where}: paragraph_id is missing or not a string")
    if not isinstance(question, str) or not question.strip():
        raise KnowledgeError(f"{where}: question is missing or empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise KnowledgeError(f"{where}: question is longer than {MAX_QUESTION_CHARS} characters")
    if lang not in ("sv", "en"):
        raise KnowledgeError(f"{where}: lang must be \"sv\" or \"en\", not {lang!r}")
    return ExampleQuestion(pid.strip(), " ".join(question.split()), lang, where)


def load_questions(knowledge_dir: Path) -> list[ExampleQuestion]:
    """Every example question under knowledge/questions/, in file and line order. A malformed
    line raises KnowledgeError naming the file and line; blank lines are skipped."""
    out: list[ExampleQuestion] = []
    for path in question_files(knowledge_dir):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                out.append(_parse_line(line, f"{path}:{n}"))
    return out


@dataclass(frozen=True)
class QuestionMatch:
    """The examples that belong to paragraphs of the index (``owners[i]`` is the paragraph
    position of ``kept[i]``) and the ones whose paragraph is not in it."""

    kept: list[ExampleQuestion]
    owners: list[int]
    orphans: list[ExampleQuestion]


def match_questions(questions: list[ExampleQuestion], paragraph_ids: list[str]) -> QuestionMatch:
    position = {pid: i for i, pid in enumerate(paragraph_ids)}
    kept, owners, orphans, seen = [], [], [], set()
    for q in questions:
        i = position.get(q.paragraph_id)
        if i is None:
            orphans.append(q)
        elif (i, q.question.casefold()) not in seen:
            seen.add((i, q.question.casefold()))
            kept.append(q)
            owners.append(i)
    return QuestionMatch(kept, owners, orphans)
