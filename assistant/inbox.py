"""What hub staff follow up on: requests to talk to a person, feedback on answers, unanswered questions.

One SQLite file (a setting); each call opens its own connection, so the store is safe to share
between the action server's worker threads. The staff inbox (web page and API) reads the same file.

What users write here is bounded (``InboxLimits``): text fields are cut to a maximum length, and each
conversation, and all conversations together, may add only so many rows per hour of each kind; over
a limit ``add_*`` raises ``InboxLimited`` and stores nothing. The check and the insert run in one
write transaction, so parallel writers cannot overshoot.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
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
CREATE INDEX IF NOT EXISTS handoff_requests_sender ON handoff_requests (sender_id, created_at);
CREATE INDEX IF NOT EXISTS handoff_requests_created ON handoff_requests (created_at);
CREATE TABLE IF NOT EXISTS unanswered (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    question TEXT NOT NULL,
    language TEXT NOT NULL,
    dense_max REAL,
    lexical_max REAL
);
CREATE INDEX IF NOT EXISTS unanswered_sender ON unanswered (sender_id, created_at);
CREATE INDEX IF NOT EXISTS unanswered_created ON unanswered (created_at);
CREATE INDEX IF NOT EXISTS feedback_sender ON feedback (sender_id, created_at);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback (created_at);
"""


class InboxLimited(Exception):
    """A user-written row refused because of a rate limit (nothing was stored)."""


@dataclass(frozen=True)
class InboxLimits:
    max_text_chars: int = 1000  # questions (longer ones are cut)
    max_contact_chars: int = 200
    handoffs_per_sender_hour: int = 3  # rows one conversation may add per hour, per kind
    feedback_per_sender_hour: int = 30
    unanswered_per_sender_hour: int = 30
    per_hour: int = 1000  # rows of one kind all conversations together may add per hour

    def per_sender(self, table: str) -> int:
        return {"handoff_requests": self.handoffs_per_sender_hour, "feedback": self.feedback_per_sender_hour,
                "unanswered": self.unanswered_per_sender_hour}[table]


def _now(offset_seconds: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset_seconds)).isoformat(timespec="seconds")


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
    reason: str | None = None  # 👎 in the web chat: wrong_source | not_answered | outdated


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
    def __init__(self, path: Path, limits: InboxLimits | None = None):
        self.path = Path(path)
        self.limits = limits or InboxLimits()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            # WAL: the staff's reads never block the action server's writes (and the reverse).
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            if "reason" not in {r["name"] for r in db.execute("PRAGMA table_info(feedback)")}:
                db.execute("ALTER TABLE feedback ADD COLUMN reason TEXT")  # files made before reasons existed

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def _insert(self, sql: str, values: tuple) -> int:
        with closing(self._connect()) as db, db:
            return int(db.execute(sql, values).lastrowid)

    def _insert_limited(self, table: str, sender_id: str, sql: str, values: tuple) -> int:
        """Insert a user-written row unless this conversation or everyone is over the hourly limit."""
        since = _now(-3600)
        with closing(self._connect()) as db:
            db.isolation_level = None
            db.execute("BEGIN IMMEDIATE")  # one writer at a time: the counts stay true until the insert
            try:
                mine = db.execute(f"SELECT COUNT(*) FROM {table} WHERE sender_id = ? AND created_at >= ?",
                                  (sender_id, since)).fetchone()[0]
                everyone = db.execute(f"SELECT COUNT(*) FROM {table} WHERE created_at >= ?", (since,)).fetchone()[0]
                if mine >= self.limits.per_sender(table) or everyone >= self.limits.per_hour:
                    raise InboxLimited(f"{table}: {mine} rows from {sender_id!r}, {everyone} in all in the last hour")
                row_id = int(db.execute(sql, values).lastrowid)
                db.execute("COMMIT")
                return row_id
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _text(self, value: str | None, limit: int | None = None) -> str | None:
        return None if value is None else str(value)[: limit or self.limits.max_text_chars]

    def add_handoff(self, sender_id: str, question: str, contact: str, language: str) -> int:
        return self._insert_limited(
            "handoff_requests", sender_id,
            "INSERT INTO handoff_requests (created_at, sender_id, question, contact, language) VALUES (?, ?, ?, ?, ?)",
            (_now(), sender_id, self._text(question), self._text(contact, self.limits.max_contact_chars),
             str(language)[:8]),
        )

    def add_feedback(self, sender_id: str, rating: str, question: str | None, paragraph_ids: list[str],
                     reason: str | None = None) -> int:
        return self._insert_limited(
            "feedback", sender_id,
            "INSERT INTO feedback (created_at, sender_id, rating, question, paragraph_ids, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (_now(), sender_id, rating, self._text(question), json.dumps([str(i)[:100] for i in paragraph_ids][:10]),
             reason),
        )

    def add_unanswered(self, sender_id: str, question: str, language: str,
                       dense_max: float | None, lexical_max: float | None) -> int:
        return self._insert_limited(
            "unanswered", sender_id,
            "INSERT INTO unanswered (created_at, sender_id, question, language, dense_max, lexical_max) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (_now(), sender_id, self._text(question), str(language)[:8], dense_max, lexical_max),
        )

    def handoffs(self, status: str | None = None, limit: int | None = None,
                 before: int | None = None) -> list[HandoffRequest]:
        """Requests in id order; with ``limit``, the newest ``limit`` with an id below ``before`` (a page)."""
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if before is not None:
            where.append("id < ?")
            args.append(before)
        sql = "SELECT * FROM handoff_requests" + (" WHERE " + " AND ".join(where) if where else "")
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT ?)"
            args.append(limit)
        with closing(self._connect()) as db:
            return [HandoffRequest(**dict(r)) for r in db.execute(sql + " ORDER BY id", args)]

    def handoff(self, request_id: int) -> HandoffRequest | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM handoff_requests WHERE id = ?", (request_id,)).fetchone()
        return HandoffRequest(**dict(row)) if row else None

    def feedback(self) -> list[Feedback]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM feedback ORDER BY id").fetchall()
        return [Feedback(**{**dict(r), "paragraph_ids": json.loads(r["paragraph_ids"])}) for r in rows]

    def unanswered(self) -> list[Unanswered]:
        with closing(self._connect()) as db:
            return [Unanswered(**dict(r)) for r in db.execute("SELECT * FROM unanswered ORDER BY id")]

    def gaps(self, limit: int | None = None, offset: int = 0) -> list[tuple[str, str, int, str]]:
        """(kind, question, count, last seen): unanswered questions and 👎-rated ones, grouped by the
        trimmed question, most frequent first; counted by SQLite, one page at a time."""
        sql = ("SELECT kind, question, COUNT(*) AS n, MAX(created_at) AS last FROM ("
               "SELECT 'unanswered' AS kind, TRIM(question) AS question, created_at FROM unanswered "
               "UNION ALL SELECT 'bad_answer', TRIM(question), created_at FROM feedback "
               "WHERE rating = 'bad' AND question IS NOT NULL AND TRIM(question) != '') "
               "GROUP BY kind, question ORDER BY n DESC, kind, question")
        args: tuple = ()
        if limit is not None:
            sql, args = sql + " LIMIT ? OFFSET ?", (limit, offset)
        with closing(self._connect()) as db:
            return [(r["kind"], r["question"], r["n"], r["last"]) for r in db.execute(sql, args)]

    def add_staff_message(self, sender_id: str, author: str, text: str) -> int:
        return self._insert("INSERT INTO staff_messages (created_at, sender_id, author, text) VALUES (?, ?, ?, ?)",
                            (_now(), sender_id, author, text))

    def reply(self, request_id: int, author: str, text: str) -> tuple[int, str] | None:
        """A staff reply to a request and its status 'answered', in one transaction (both or neither);
        (message id, sender id), or None when there is no such request."""
        with closing(self._connect()) as db, db:
            row = db.execute("SELECT sender_id FROM handoff_requests WHERE id = ?", (request_id,)).fetchone()
            if row is None:
                return None
            message_id = int(db.execute(
                "INSERT INTO staff_messages (created_at, sender_id, author, text) VALUES (?, ?, ?, ?)",
                (_now(), row["sender_id"], author, text)).lastrowid)
            db.execute("UPDATE handoff_requests SET status = 'answered' WHERE id = ?", (request_id,))
            return message_id, row["sender_id"]

    def staff_messages(self, sender_id: str, after: int = 0) -> list[StaffMessage]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM staff_messages WHERE sender_id = ? AND id > ? ORDER BY id",
                              (sender_id, after)).fetchall()
        return [StaffMessage(**dict(r)) for r in rows]

    def set_handoff_status(self, request_id: int, status: str) -> None:
        with closing(self._connect()) as db, db:
            db.execute("UPDATE handoff_requests SET status = ? WHERE id = ?", (status, request_id))
