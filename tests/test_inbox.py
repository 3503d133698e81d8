"""The inbox store on each database it supports: a SQLite file (the default) and PostgreSQL (slow: a
real server started by the ``postgres_server`` fixture). Every test taking ``inbox_db`` runs on both."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import sqlalchemy as sa

from assistant.inbox import Inbox, InboxLimited, InboxLimits, describe_database


def test_requests_messages_feedback_and_pages_round_trip(inbox_db):
    inbox = Inbox(inbox_db)
    ids = [inbox.add_handoff(f"web:{i}", f"fråga {i}", f"{i}@example.se", "sv") for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [r.question for r in inbox.handoffs()] == [f"fråga {i}" for i in range(5)]
    # A page: the newest two below the third id, still in id order.
    assert [r.id for r in inbox.handoffs(limit=2, before=ids[3])] == ids[1:3]
    assert [r.id for r in inbox.handoffs(limit=2)] == ids[3:]
    inbox.set_handoff_status(ids[0], "closed")
    assert [r.id for r in inbox.handoffs(status="open")] == ids[1:]
    assert inbox.handoff(ids[2]).contact == "2@example.se" and inbox.handoff(10_000) is None

    first = inbox.add_staff_message("web:1", "Lisa", "Hej!")
    second = inbox.add_staff_message("web:1", "Lisa", "Är du kvar?")
    inbox.add_staff_message("web:2", "Per", "Annan")
    assert [m.text for m in inbox.staff_messages("web:1")] == ["Hej!", "Är du kvar?"]
    assert [m.id for m in inbox.staff_messages("web:1", after=first)] == [second]

    inbox.add_feedback("web:1", "bad", "Vad är IOP?", ["004-a", "001-b"], reason="outdated")
    inbox.add_unanswered("web:1", "Vad blir vädret?", "sv", 0.42, None)
    [fb] = inbox.feedback()
    assert (fb.rating, fb.paragraph_ids, fb.reason) == ("bad", ["004-a", "001-b"], "outdated")
    [un] = inbox.unanswered()
    assert (un.question, un.dense_max, un.lexical_max) == ("Vad blir vädret?", pytest.approx(0.42), None)
    # Another Inbox on the same database sees the same rows (the action server and the web service).
    assert [r.id for r in Inbox(inbox_db).handoffs()] == ids


def test_gaps_group_trimmed_questions_most_frequent_first_in_pages(inbox_db):
    inbox = Inbox(inbox_db, InboxLimits(unanswered_per_sender_hour=100, feedback_per_sender_hour=100))
    for n in range(1, 5):
        for _ in range(n):
            inbox.add_unanswered("web:a", f" fråga {n} ", "sv", None, None)
    inbox.add_feedback("web:a", "bad", "fråga 4", [])
    inbox.add_feedback("web:a", "bad", "   ", [])  # blank: not a gap
    inbox.add_feedback("web:a", "good", "fråga 1", [])  # good: not a gap
    gaps = [(k, q, n) for k, q, n, _ in inbox.gaps()]
    assert gaps == [("unanswered", "fråga 4", 4), ("unanswered", "fråga 3", 3), ("unanswered", "fråga 2", 2),
                    ("bad_answer", "fråga 4", 1), ("unanswered", "fråga 1", 1)]
    assert [(k, q, n) for k, q, n, _ in inbox.gaps(limit=2, offset=1)] == gaps[1:3]


def test_user_writes_are_cut_and_limited_per_sender_and_in_all(inbox_db):
    inbox = Inbox(inbox_db, InboxLimits(max_text_chars=100, handoffs_per_sender_hour=2, feedback_per_sender_hour=3,
                                        per_hour=5))
    inbox.add_handoff("web:a", "x" * 10_000, "a@example.se" + "y" * 10_000, "sv")
    inbox.add_handoff("web:a", "fråga två", "a@example.se", "sv")
    with pytest.raises(InboxLimited):
        inbox.add_handoff("web:a", "fråga tre", "a@example.se", "sv")
    [first, _] = inbox.handoffs()
    assert len(first.question) == 100 and len(first.contact) == 200
    for i in range(3):
        inbox.add_handoff(f"web:{i}", "fråga", "b@example.se", "sv")
    with pytest.raises(InboxLimited):  # everyone together: 5 an hour
        inbox.add_handoff("web:new", "fråga", "c@example.se", "sv")
    assert len(inbox.handoffs()) == 5
    for _ in range(3):
        inbox.add_feedback("web:a", "bad", "q" * 5000, ["p"] * 50)
    with pytest.raises(InboxLimited):
        inbox.add_feedback("web:a", "bad", "q", [])
    row = inbox.feedback()[0]
    assert len(row.question) == 100 and len(row.paragraph_ids) == 10


def test_one_client_is_limited_over_all_its_conversations(inbox_db):
    """A web chat client (one address) opening new conversations gets no more rows than its own limit;
    another client, and a row without a client tag (REST, Slack, Teams), still get theirs."""
    inbox = Inbox(inbox_db, InboxLimits(handoffs_per_client_hour=2, feedback_per_client_hour=1))
    inbox.add_handoff("web:1", "fråga", "a@example.se", "sv", client="tag-a")
    inbox.add_handoff("web:2", "fråga", "a@example.se", "sv", client="tag-a")
    with pytest.raises(InboxLimited):
        inbox.add_handoff("web:3", "fråga", "a@example.se", "sv", client="tag-a")
    inbox.add_handoff("web:4", "fråga", "b@example.se", "sv", client="tag-b")
    inbox.add_handoff("rest:5", "fråga", "c@example.se", "sv")
    assert [r.sender_id for r in inbox.handoffs()] == ["web:1", "web:2", "web:4", "rest:5"]
    inbox.add_feedback("web:1", "bad", "fråga", [], client="tag-a")
    with pytest.raises(InboxLimited):  # each kind has its own count
        inbox.add_feedback("web:2", "bad", "fråga", [], client="tag-a")


def test_a_row_refused_for_its_conversation_does_not_count_against_its_client(inbox_db):
    inbox = Inbox(inbox_db, InboxLimits(handoffs_per_sender_hour=1, handoffs_per_client_hour=2))
    inbox.add_handoff("web:1", "fråga", "a@example.se", "sv", client="tag-a")
    with pytest.raises(InboxLimited):  # the conversation's own limit
        inbox.add_handoff("web:1", "fråga", "a@example.se", "sv", client="tag-a")
    inbox.add_handoff("web:2", "fråga", "a@example.se", "sv", client="tag-a")  # the client's second row


def test_parallel_writers_cannot_overshoot_the_limit(inbox_db):
    """Twelve threads (separate connections) ask for a person at the same moment in one conversation
    allowed three an hour: exactly three are stored, the others are refused."""
    Inbox(inbox_db)  # the schema first
    inboxes = [Inbox(inbox_db, InboxLimits(handoffs_per_sender_hour=3)) for _ in range(12)]
    start = threading.Barrier(len(inboxes))
    outcomes: list[str] = []

    def ask(inbox: Inbox) -> None:
        start.wait()
        try:
            inbox.add_handoff("web:many", "fråga", "x@example.se", "sv")
            outcomes.append("stored")
        except InboxLimited:
            outcomes.append("refused")

    threads = [threading.Thread(target=ask, args=(i,)) for i in inboxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["refused"] * 9 + ["stored"] * 3
    assert len(Inbox(inbox_db).handoffs()) == 3
    for inbox in inboxes:
        inbox.dispose()


def test_a_reply_and_its_status_are_stored_together_or_not_at_all(inbox_db):
    inbox = Inbox(inbox_db)
    request_id = inbox.add_handoff("web:a", "fråga", "a@example.se", "sv")
    # The status change fails (a trigger stands in for a crash or a locked row): the reply is not kept either.
    if inbox.dialect == "sqlite":
        install = ["CREATE TRIGGER no_answer BEFORE UPDATE ON handoff_requests "
                   "BEGIN SELECT RAISE(ABORT, 'status locked'); END"]
        remove = ["DROP TRIGGER no_answer"]
    else:
        install = ["CREATE FUNCTION no_answer() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'status locked'; END $$",
                   "CREATE TRIGGER no_answer BEFORE UPDATE ON handoff_requests FOR EACH ROW EXECUTE FUNCTION no_answer()"]
        remove = ["DROP TRIGGER no_answer ON handoff_requests"]
    with inbox.engine.begin() as db:
        for sql in install:
            db.exec_driver_sql(sql)
    with pytest.raises(sa.exc.DBAPIError, match="status locked"):
        inbox.reply(request_id, "Lisa", "Hej!")
    assert inbox.staff_messages("web:a") == [] and inbox.handoffs()[0].status == "open"
    with inbox.engine.begin() as db:
        for sql in remove:
            db.exec_driver_sql(sql)
    message_id, sender = inbox.reply(request_id, "Lisa", "Hej!")
    assert sender == "web:a" and [m.id for m in inbox.staff_messages("web:a")] == [message_id]
    assert inbox.handoffs()[0].status == "answered"
    assert inbox.reply(request_id + 100, "Lisa", "Hej!") is None


def test_sqlite_inbox_uses_wal_and_upgrades_files_without_feedback_reasons(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # a file from before reasons existed
        db.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, "
                   "sender_id TEXT NOT NULL, rating TEXT NOT NULL, question TEXT, paragraph_ids TEXT NOT NULL)")
        db.execute("INSERT INTO feedback (created_at, sender_id, rating, question, paragraph_ids) "
                   "VALUES ('2026-01-01T00:00:00+00:00', 'web:old', 'good', 'q', '[]')")
    inbox = Inbox(path)
    inbox.add_feedback("web:new", "bad", "q2", ["p"], reason="wrong_source")
    assert [(f.sender_id, f.reason) for f in inbox.feedback()] == [("web:old", None), ("web:new", "wrong_source")]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert inbox.path == path and inbox.describe() == str(path)


def test_a_database_url_is_never_shown_with_its_password(monkeypatch, tmp_path):
    from assistant.settings import AssistantSettings

    url = "postgresql://assistant:S3cret-pw@db.example.se:5432/inbox"
    monkeypatch.setenv("ASSISTANT_INBOX_DB", url)
    settings = AssistantSettings()
    assert "S3cret-pw" not in repr(settings) and "S3cret-pw" not in str(settings.inbox_db)
    assert describe_database(settings.inbox_db) == "postgresql://assistant:***@db.example.se:5432/inbox"
    assert settings.inbox_db.get_secret_value() == url  # the children get it by environment, unmasked
    # A path stays a path (relative to the project root), as before.
    monkeypatch.setenv("ASSISTANT_INBOX_DB", str(tmp_path / "x.sqlite3"))
    assert AssistantSettings().inbox_db == tmp_path / "x.sqlite3"
    with pytest.raises(ValueError, match="postgresql"):
        Inbox("mysql://u:p@h/db")


@pytest.mark.slow
def test_a_postgresql_inbox_describes_itself_without_the_password(postgres_server):
    url = postgres_server.create_database("inbox_describe")
    inbox = Inbox(url)
    assert postgres_server.password not in inbox.describe() and postgres_server.password not in repr(inbox)
    assert inbox.describe().startswith("postgresql://assistant:***@127.0.0.1:")
    inbox.dispose()
