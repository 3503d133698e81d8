"""What hub staff follow up on: requests to talk to a person, feedback on answers, unanswered questions.

One SQLite file (a setting); each call opens its own connection, so the store is safe to share
between the action server's worker threads. The staff inbox (web page and API) reads the same file.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS handoff_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    question TEXT NOT NULL,
    contact TEXT NOT NULL,
    language TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open'
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('good', 'bad')),
    question TEXT,
    paragraph_ids TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS staff_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS staff_messages_sender ON staff_messages (sender_id, id);
CREATE TABLE IF NOT EXISTS unanswered (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    question TEXT NOT NULL,
    language TEXT NOT NULL,
    dense_max REAL,
    lexical_max REAL
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class HandoffRequest:
    id: int
    created_at: str
    sender_id: str
    question: str
    contact: str
    language: str
    status: str


@dataclass(frozen=True)
class Feedback:
    id: int
    created_at: str
    sender_id: str
    rating: str
    question: str | None
    paragraph_ids: list[str]


@dataclass(frozen=True)
class Unanswered:
    id: int
    created_at: str
    sender_id: str
    question: str
    language: str
    dense_max: float | None
    lexical_max: float | None


@dataclass(frozen=True)
class StaffMessage:
    id: int
    created_at: str
    sender_id: str
    author: str
    text: str


class Inbox:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def _insert(self, sql: str, values: tuple) -> int:
        with closing(self._connect()) as db, db:
            return int(db.execute(sql, values).lastrowid)

    def add_handoff(self, sender_id: str, question: str, contact: str, language: str) -> int:
        return self._insert(
            "INSERT INTO handoff_requests (created_at, sender_id, question, contact, language) VALUES (?, ?, ?, ?, ?)",
            (_now(), sender_id, question, contact, language),
        )

    def add_feedback(self, sender_id: str, rating: str, question: str | None, paragraph_ids: list[str]) -> int:
        return self._insert(
            "INSERT INTO feedback (created_at, sender_id, rating, question, paragraph_ids) VALUES (?, ?, ?, ?, ?)",
            (_now(), sender_id, rating, question, json.dumps(paragraph_ids)),
        )

    def add_unanswered(self, sender_id: str, question: str, language: str,
                       dense_max: float | None, lexical_max: float | None) -> int:
        return self._insert(
            "INSERT INTO unanswered (created_at, sender_id, question, language, dense_max, lexical_max) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (_now(), sender_id, question, language, dense_max, lexical_max),
        )

    def handoffs(self, status: str | None = None) -> list[HandoffRequest]:
        sql, args = "SELECT * FROM handoff_requests", ()
        if status:
            sql, args = sql + " WHERE status = ?", (status,)
        with closing(self._connect()) as db:
            return [HandoffRequest(**dict(r)) for r in db.execute(sql + " ORDER BY id", args)]

    def feedback(self) -> list[Feedback]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM feedback ORDER BY id").fetchall()
        return [Feedback(**{**dict(r), "paragraph_ids": json.loads(r["paragraph_ids"])}) for r in rows]

    def unanswered(self) -> list[Unanswered]:
        with closing(self._connect()) as db:
            return [Unanswered(**dict(r)) for r in db.execute("SELECT * FROM unanswered ORDER BY id")]

    def add_staff_message(self, sender_id: str, author: str, text: str) -> int:
        return self._insert("INSERT INTO staff_messages (created_at, sender_id, author, text) VALUES (?, ?, ?, ?)",
                            (_now(), sender_id, author, text))

    def staff_messages(self, sender_id: str, after: int = 0) -> list[StaffMessage]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM staff_messages WHERE sender_id = ? AND id > ? ORDER BY id",
                              (sender_id, after)).fetchall()
        return [StaffMessage(**dict(r)) for r in rows]

    def set_handoff_status(self, request_id: int, status: str) -> None:
        with closing(self._connect()) as db, db:
            db.execute("UPDATE handoff_requests SET status = ? WHERE id = ?", (status, request_id))
