"""What hub staff follow up on: requests to talk to a person, feedback on answers, unanswered questions.

One database (``ASSISTANT_INBOX_DB``): a SQLite file by default (WAL mode, zero setup), or a
``postgresql://`` URL when several machines share the inbox. It is reached through SQLAlchemy's core
(one engine per ``Inbox``, a small connection pool), so the store is safe to share between the action
server's worker threads and between processes. The staff inbox (web page and API) reads the same
database. A URL may carry a password: ``describe()`` (what logs and start-up messages show) masks it.

What users write here is bounded (``InboxLimits``): text fields are cut to a maximum length, and each
conversation, and all conversations together, may add only so many rows per hour of each kind; over
a limit ``add_*`` raises ``InboxLimited`` and stores nothing. The check and the insert run in one
write transaction that excludes other writers of the same table (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: a ``SHARE ROW EXCLUSIVE`` table lock, which readers do not wait for), so parallel writers
cannot overshoot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

METADATA = sa.MetaData()
HANDOFFS = sa.Table(
    "handoff_requests", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("sender_id", sa.Text, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("contact", sa.Text, nullable=False),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    sa.Index("handoff_requests_sender", "sender_id", "created_at"),
    sa.Index("handoff_requests_created", "created_at"),
    sqlite_autoincrement=True,  # ids are never reused (as before: INTEGER PRIMARY KEY AUTOINCREMENT)
)
FEEDBACK = sa.Table(
    "feedback", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("sender_id", sa.Text, nullable=False),
    sa.Column("rating", sa.Text, sa.CheckConstraint("rating IN ('good', 'bad')"), nullable=False),
    sa.Column("question", sa.Text),
    sa.Column("paragraph_ids", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Index("feedback_sender", "sender_id", "created_at"),
    sa.Index("feedback_created", "created_at"),
    sqlite_autoincrement=True,
)
STAFF_MESSAGES = sa.Table(
    "staff_messages", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("sender_id", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("citations", sa.Text),  # JSON list of CitationPayload the reply carries (None: none)
    sa.Column("language", sa.Text),  # the conversation's language when staff replied
    sa.Index("staff_messages_sender", "sender_id", "id"),
    sqlite_autoincrement=True,
)
UNANSWERED = sa.Table(
    "unanswered", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("sender_id", sa.Text, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("dense_max", sa.Float),
    sa.Column("lexical_max", sa.Float),
    sa.Index("unanswered_sender", "sender_id", "created_at"),
    sa.Index("unanswered_created", "created_at"),
    sqlite_autoincrement=True,
)
LIMITED_TABLES = {t.name: t for t in (HANDOFFS, FEEDBACK, UNANSWERED)}
SCHEMA_LOCK = 7_115_001  # PostgreSQL advisory lock: processes starting together create the tables once
_WRITE = "inbox_write"  # execution option: this transaction writes a rate-limited table


def database_url(db: "Path | str | SecretStr") -> sa.URL:
    """The SQLAlchemy URL of ``ASSISTANT_INBOX_DB``: a URL as given, else a SQLite file path."""
    if isinstance(db, SecretStr):
        db = db.get_secret_value()
    text = str(db)
    if "://" in text:
        url = sa.make_url(text)
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"ASSISTANT_INBOX_DB: only SQLite files and postgresql:// URLs are supported, "
                             f"not {url.get_backend_name()!r}")
        return url
    return sa.URL.create("sqlite", database=str(Path(text)))


def describe_database(db: "Path | str | SecretStr | sa.URL") -> str:
    """Where the inbox is, for logs and start-up messages: a file path, or the URL with its password masked."""
    url = db if isinstance(db, sa.URL) else database_url(db)
    if url.get_backend_name() == "sqlite" and url.database and not url.query:
        return url.database
    return url.render_as_string(hide_password=True)


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
    # Rows one web chat client (its address, as an opaque tag: guard.client_tag) may add per hour over all
    # its conversations: a new conversation is free to open, an address is not.
    handoffs_per_client_hour: int = 10
    feedback_per_client_hour: int = 100
    unanswered_per_client_hour: int = 100

    def per_sender(self, table: str) -> int:
        return {"handoff_requests": self.handoffs_per_sender_hour, "feedback": self.feedback_per_sender_hour,
                "unanswered": self.unanswered_per_sender_hour}[table]

    def per_client(self, table: str) -> int:
        return {"handoff_requests": self.handoffs_per_client_hour, "feedback": self.feedback_per_client_hour,
                "unanswered": self.unanswered_per_client_hour}[table]


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
    citations: list[dict[str, Any]] = field(default_factory=list)  # CitationPayload, shown as cards
    language: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "StaffMessage":
        return cls(**{**row, "citations": citations_from_json(row.get("citations"))})


class Inbox:
    def __init__(self, db: "Path | str | SecretStr", limits: InboxLimits | None = None,
                 redis_url: str | None = None):
        from .shared_limits import rate_limiter

        self.url = database_url(db)
        self.limits = limits or InboxLimits()
        # Per client address, counted in Redis for every action server when there is one.
        self._client_limiters = {
            table.name: rate_limiter(self.limits.per_client(table.name), f"inbox-{table.name}-client", redis_url,
                                     window=3600.0)
            for table in (HANDOFFS, FEEDBACK, UNANSWERED)
        }
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(self.url, connect_args={"timeout": 10})
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = sa.create_engine(self.url, pool_size=5, max_overflow=5, pool_pre_ping=True,
                                           pool_recycle=1800, connect_args={"connect_timeout": 10})
        with self._write() as db:
            if self.dialect == "postgresql":
                db.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            METADATA.create_all(db)
            if "reason" not in {c["name"] for c in sa.inspect(db).get_columns("feedback")}:
                db.execute(sa.text("ALTER TABLE feedback ADD COLUMN reason TEXT"))  # files made before reasons
            staff_columns = {c["name"] for c in sa.inspect(db).get_columns("staff_messages")}
            for column in ("citations", "language"):  # databases made before staff replies carried citations
                if column not in staff_columns:
                    db.execute(sa.text(f"ALTER TABLE staff_messages ADD COLUMN {column} TEXT"))

    @property
    def path(self) -> Path | None:
        """The SQLite file (None for a server database)."""
        return Path(self.url.database) if self.dialect == "sqlite" and self.url.database else None

    def describe(self) -> str:
        """Where the inbox is, safe to log: the file, or the URL without its password."""
        return describe_database(self.url)

    def __repr__(self) -> str:
        return f"Inbox({self.describe()!r})"

    def dispose(self) -> None:
        """Close the pooled connections (tests, shutdown)."""
        self.engine.dispose()

    def _write(self):
        """A write transaction that excludes other writers of SQLite (BEGIN IMMEDIATE) from its start."""
        return _WriteTransaction(self.engine)

    def _insert(self, table: sa.Table, values: dict[str, Any]) -> int:
        with self.engine.begin() as db:
            return int(db.execute(table.insert().values(**values)).inserted_primary_key[0])

    def _insert_limited(self, table: sa.Table, sender_id: str, values: dict[str, Any],
                        client: str | None = None) -> int:
        """Insert a user-written row unless this conversation, its client (``client``: the opaque tag of
        the web chat's address, when known) or everyone is over the hourly limit."""
        limiter = self._client_limiters[table.name]
        if client and not limiter.allow(client):
            raise InboxLimited(f"{table.name}: client over {self.limits.per_client(table.name)} rows in the last hour")
        try:
            return self._insert_counted(table, sender_id, values)
        except Exception:
            if client:
                limiter.forget_last(client)  # nothing stored: it does not count against the client
            raise

    def _insert_counted(self, table: sa.Table, sender_id: str, values: dict[str, Any]) -> int:
        since = _now(-3600)
        with self._write() as db:
            if self.dialect == "postgresql":
                # Writers of this table wait for each other (the counts stay true until the insert);
                # readers do not wait.
                db.execute(sa.text(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE"))
            recent = table.c.created_at >= since
            mine = db.execute(sa.select(sa.func.count()).select_from(table)
                              .where(table.c.sender_id == sender_id, recent)).scalar_one()
            everyone = db.execute(sa.select(sa.func.count()).select_from(table).where(recent)).scalar_one()
            if mine >= self.limits.per_sender(table.name) or everyone >= self.limits.per_hour:
                raise InboxLimited(f"{table.name}: {mine} rows from {sender_id!r}, {everyone} in all in the last hour")
            return int(db.execute(table.insert().values(**values)).inserted_primary_key[0])

    def _text(self, value: str | None, limit: int | None = None) -> str | None:
        return None if value is None else str(value)[: limit or self.limits.max_text_chars]

    def add_handoff(self, sender_id: str, question: str, contact: str, language: str,
                    client: str | None = None) -> int:
        return self._insert_limited(HANDOFFS, sender_id, {
            "created_at": _now(), "sender_id": sender_id, "question": self._text(question),
            "contact": self._text(contact, self.limits.max_contact_chars), "language": str(language)[:8]}, client)

    def add_feedback(self, sender_id: str, rating: str, question: str | None, paragraph_ids: list[str],
                     reason: str | None = None, client: str | None = None) -> int:
        return self._insert_limited(FEEDBACK, sender_id, {
            "created_at": _now(), "sender_id": sender_id, "rating": rating, "question": self._text(question),
            "paragraph_ids": json.dumps([str(i)[:100] for i in paragraph_ids][:10]), "reason": reason}, client)

    def add_unanswered(self, sender_id: str, question: str, language: str,
                       dense_max: float | None, lexical_max: float | None, client: str | None = None) -> int:
        return self._insert_limited(UNANSWERED, sender_id, {
            "created_at": _now(), "sender_id": sender_id, "question": self._text(question),
            "language": str(language)[:8], "dense_max": dense_max, "lexical_max": lexical_max}, client)

    def _rows(self, query) -> list[dict[str, Any]]:
        with self.engine.connect() as db:
            return [dict(r) for r in db.execute(query).mappings()]

    def handoffs(self, status: str | None = None, limit: int | None = None,
                 before: int | None = None) -> list[HandoffRequest]:
        """Requests in id order; with ``limit``, the newest ``limit`` with an id below ``before`` (a page)."""
        query = sa.select(HANDOFFS)
        if status:
            query = query.where(HANDOFFS.c.status == status)
        if before is not None:
            query = query.where(HANDOFFS.c.id < before)
        if limit is None:
            query = query.order_by(HANDOFFS.c.id)
        else:
            page = query.order_by(HANDOFFS.c.id.desc()).limit(limit).subquery()
            query = sa.select(page).order_by(page.c.id)
        return [HandoffRequest(**r) for r in self._rows(query)]

    def handoff(self, request_id: int) -> HandoffRequest | None:
        rows = self._rows(sa.select(HANDOFFS).where(HANDOFFS.c.id == request_id))
        return HandoffRequest(**rows[0]) if rows else None

    def feedback(self) -> list[Feedback]:
        return [Feedback(**{**r, "paragraph_ids": json.loads(r["paragraph_ids"])})
                for r in self._rows(sa.select(FEEDBACK).order_by(FEEDBACK.c.id))]

    def unanswered(self) -> list[Unanswered]:
        return [Unanswered(**r) for r in self._rows(sa.select(UNANSWERED).order_by(UNANSWERED.c.id))]

    def gaps(self, limit: int | None = None, offset: int = 0) -> list[tuple[str, str, int, str]]:
        """(kind, question, count, last seen): unanswered questions and 👎-rated ones, grouped by the
        trimmed question, most frequent first; counted by the database, one page at a time."""
        question = sa.func.trim(FEEDBACK.c.question)
        both = sa.union_all(
            sa.select(sa.literal("unanswered").label("kind"), sa.func.trim(UNANSWERED.c.question).label("question"),
                      UNANSWERED.c.created_at),
            sa.select(sa.literal("bad_answer"), question, FEEDBACK.c.created_at)
            .where(FEEDBACK.c.rating == "bad", FEEDBACK.c.question.is_not(None), question != ""),
        ).subquery()
        n = sa.func.count().label("n")
        query = (sa.select(both.c.kind, both.c.question, n, sa.func.max(both.c.created_at).label("last"))
                 .group_by(both.c.kind, both.c.question).order_by(n.desc(), both.c.kind, both.c.question))
        if limit is not None:
            query = query.limit(limit).offset(offset)
        return [(r["kind"], r["question"], r["n"], r["last"]) for r in self._rows(query)]

    def add_staff_message(self, sender_id: str, author: str, text: str, citations: list[dict] | None = None,
                          language: str | None = None) -> int:
        return self._insert(STAFF_MESSAGES, {"created_at": _now(), "sender_id": sender_id, "author": author,
                                             "text": text, "citations": _citations(citations),
                                             "language": language})

    def reply(self, request_id: int, author: str, text: str, citations: list[dict] | None = None,
              language: str | None = None) -> tuple[int, str] | None:
        """A staff reply to a request and its status 'answered', in one transaction (both or neither);
        (message id, sender id), or None when there is no such request. ``citations`` (CitationPayload)
        are shown as cards under the reply in the user's chat."""
        with self.engine.begin() as db:
            sender_id = db.execute(sa.select(HANDOFFS.c.sender_id).where(HANDOFFS.c.id == request_id)).scalar()
            if sender_id is None:
                return None
            message_id = int(db.execute(STAFF_MESSAGES.insert().values(
                created_at=_now(), sender_id=sender_id, author=author, text=text, citations=_citations(citations),
                language=language)).inserted_primary_key[0])
            db.execute(HANDOFFS.update().where(HANDOFFS.c.id == request_id).values(status="answered"))
            return message_id, sender_id

    def staff_messages(self, sender_id: str, after: int = 0) -> list[StaffMessage]:
        query = (sa.select(STAFF_MESSAGES).where(STAFF_MESSAGES.c.sender_id == sender_id, STAFF_MESSAGES.c.id > after)
                 .order_by(STAFF_MESSAGES.c.id))
        return [StaffMessage.from_row(r) for r in self._rows(query)]

    def staff_replies_to(self, request_id: int) -> list[StaffMessage]:
        """The staff messages of a request's conversation (what was answered, with its citations)."""
        request = self.handoff(request_id)
        return self.staff_messages(request.sender_id) if request else []

    def gap_askers(self, question: str, limit: int = 200) -> list[str]:
        """Conversations whose unanswered question, or 👎-rated question, is ``question`` (trimmed, as the
        gaps list groups them), newest first; empty when it is no gap."""
        q = question.strip()
        unanswered = sa.select(UNANSWERED.c.sender_id, UNANSWERED.c.created_at).where(
            sa.func.trim(UNANSWERED.c.question) == q)
        bad = sa.select(FEEDBACK.c.sender_id, FEEDBACK.c.created_at).where(
            FEEDBACK.c.rating == "bad", sa.func.trim(FEEDBACK.c.question) == q)
        both = sa.union_all(unanswered, bad).subquery()
        query = (sa.select(both.c.sender_id, sa.func.max(both.c.created_at).label("last"))
                 .group_by(both.c.sender_id).order_by(sa.text("last DESC")).limit(limit))
        return [r["sender_id"] for r in self._rows(query)]

    def set_handoff_status(self, request_id: int, status: str) -> None:
        with self.engine.begin() as db:
            db.execute(HANDOFFS.update().where(HANDOFFS.c.id == request_id).values(status=status))


def _citations(citations: list[dict] | None) -> str | None:
    return json.dumps(citations, ensure_ascii=False) if citations else None


def citations_from_json(value: str | None) -> list[dict[str, Any]]:
    """Stored citations; anything unreadable is no citations (a reply is never lost over its cards)."""
    if not value:
        return []
    try:
        data = json.loads(value)
    except ValueError:
        return []
    return [c for c in data if isinstance(c, dict)] if isinstance(data, list) else []


class _WriteTransaction:
    """``with _WriteTransaction(engine) as connection:`` a transaction marked as a writer (see _sqlite_begin),
    committed when the block ends normally and rolled back otherwise."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def __enter__(self) -> sa.Connection:
        self.connection = self.engine.connect().execution_options(**{_WRITE: True})
        self.transaction = self.connection.begin()
        return self.connection

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self.transaction.commit()
            else:
                self.transaction.rollback()
        finally:
            self.connection.close()


def _sqlite_connect(dbapi_connection, _record) -> None:
    # SQLAlchemy, not the sqlite3 module, starts the transactions (see _sqlite_begin); WAL: the staff's
    # reads never block the action server's writes (and the reverse).
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA journal_mode=WAL")


def _sqlite_begin(connection: sa.Connection) -> None:
    # A writer of a rate-limited table takes the write lock at BEGIN, so the counts it reads stay true
    # until its insert; everyone else starts a deferred transaction.
    immediate = connection.get_execution_options().get(_WRITE)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
