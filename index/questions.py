"""Example questions: how people ask for a paragraph, written next to the documents.

knowledge/questions/*.jsonl holds one example per line, ``{"paragraph_id", "question", "lang"}``:
questions a user would type, in their own words, that the paragraph answers. The index embeds
them like queries, and a question that resembles an example finds that example's paragraph even
when it shares no word with the paragraph itself ("låna pengar" for a paragraph about
"kreditgivare"). Staff add lines here when the inbox shows a question that found nothing.

Paragraph ids are stable while a document is unchanged; an example whose paragraph is gone (the
document was edited or removed) is skipped and reported by ``python -m index build``.

``staff.jsonl`` (``STAFF_FILE``) is the one file the running service writes: the staff inbox's "save as
example question" appends to it (``StaffQuestions``), and the search engines add its new lines to their
example-question channel while they run (``SearchEngine.refresh_staff_questions``). It is therefore left
out of the corpus hash: a saved example must not make the index out of date (a rebuild takes 10+
minutes). ``make index`` / ``python -m index build`` reads it like every other file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .documents import KnowledgeError

QUESTIONS_DIR = "questions"
STAFF_FILE = "staff.jsonl"  # written by the staff inbox while the service runs
MAX_QUESTION_CHARS = 500
MAX_PARAGRAPH_ID_CHARS = 100


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
    """Identifies the example questions an index was built with (names and contents), except the staff
    file: the running engines take its new lines in live, so appending to it keeps the index current."""
    h = hashlib.sha256()
    for path in question_files(knowledge_dir):
        if path.name != STAFF_FILE:
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def staff_questions_path(knowledge_dir: Path) -> Path:
    return knowledge_dir / QUESTIONS_DIR / STAFF_FILE


def question_key(paragraph_id: str, question: str) -> str:
    """One example's identity (paragraph and question, case and spacing ignored), as a short hash: what the
    build records of the staff examples it embedded, and what keeps the live channel free of repeats."""
    text = paragraph_id.strip() + "\0" + " ".join(question.split()).casefold()
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


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


class StaffQuestionError(ValueError):
    """An example question staff wanted to save is not acceptable; the message is for the staff (Swedish)."""


def clean_staff_question(paragraph_id: object, question: object, lang: object) -> ExampleQuestion:
    """The checks of ``_parse_line`` for one example from the inbox, with messages for staff."""
    if not isinstance(paragraph_id, str) or not paragraph_id.strip() or len(paragraph_id) > MAX_PARAGRAPH_ID_CHARS:
        raise StaffQuestionError("Stycket saknas eller är ogiltigt.")
    if not isinstance(question, str) or not question.strip():
        raise StaffQuestionError("Frågan är tom.")
    question = " ".join(question.split())
    if len(question) > MAX_QUESTION_CHARS:
        raise StaffQuestionError(f"Frågan är för lång för en exempelfråga ({len(question)} tecken, högst "
                                 f"{MAX_QUESTION_CHARS}).")
    if any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in question):
        raise StaffQuestionError("Frågan innehåller otillåtna tecken.")
    if lang not in ("sv", "en"):
        raise StaffQuestionError("Språket måste vara sv eller en.")
    return ExampleQuestion(paragraph_id.strip(), question, lang, f"{STAFF_FILE}:new")


class StaffQuestions:
    """``knowledge/questions/staff.jsonl``: appends one validated, de-duplicated example at a time.

    The path is fixed by the knowledge folder (nothing a request sends names a file); the file is
    opened without following a symlink, appended to under an exclusive ``flock`` (other processes) and a
    lock (this process's threads), and each record is one ``json.dumps`` line (a question's newlines or
    quotes cannot start a second record)."""

    def __init__(self, knowledge_dir: Path):
        self.path = staff_questions_path(knowledge_dir)
        self._lock = threading.Lock()

    def read(self) -> list[ExampleQuestion]:
        """The examples in the file; a line that does not parse is skipped (the build reports it)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(_parse_line(line, f"{self.path}:{n}"))
                except KnowledgeError:
                    continue
        return out

    def add(self, paragraph_id: str, question: str, lang: str) -> tuple[ExampleQuestion, bool]:
        """Append the example unless the file already holds it (same paragraph, same question ignoring case
        and spacing); (the example, whether it was written). Raises StaffQuestionError for bad input."""
        example = clean_staff_question(paragraph_id, question, lang)
        key = question_key(example.paragraph_id, example.question)
        line = json.dumps({"paragraph_id": example.paragraph_id, "question": example.question, "lang": example.lang},
                          ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "r+", encoding="utf-8") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    f.seek(0)
                    existing = f.read()
                    for n, old in enumerate(existing.splitlines(), 1):
                        if not old.strip():
                            continue
                        try:
                            seen = _parse_line(old, f"{self.path}:{n}")
                        except KnowledgeError:
                            continue
                        if question_key(seen.paragraph_id, seen.question) == key:
                            return seen, False
                    if existing and not existing.endswith("\n"):
                        line = "\n" + line  # a hand-edited last line without its newline stays whole
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        return ExampleQuestion(example.paragraph_id, example.question, example.lang, f"{self.path}"), True
