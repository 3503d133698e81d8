"""The web chat's routes in the knowledge service (FastAPI test client, fake embedder, a fake Rasa
tracker API): the restored history needs the session's signed token exactly as staff replies do;
source files only for documents the index lists, with a type browsers cannot run; the favicon; the
paragraph page's page number and links."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time

import pytest
from conftest import JsonHandler, serve
from fastapi.testclient import TestClient

from assistant import guard
from index.search import SearchEngine
from service.app import create_app
from service.settings import ServiceSettings
from service.web import history_from_events

SECRET = "web-service-test-secret-0123456789"

EVENTS = [
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "Hej", "timestamp": 1.0},
    {"event": "bot", "text": "Hej! Vad vill du veta?", "timestamp": 2.0,
     "data": {"buttons": [{"title": "Varor", "payload": '/inform{"purchase_kind": "varor"}'}]}},
    {"event": "user", "text": '/inform{"purchase_kind": "varor"}', "timestamp": 3.0},
    {"event": "user", "text": "Vad är ett ramavtal?", "timestamp": 4.0},
    {"event": "bot", "text": "Ett ramavtal är … Källor: [1]", "timestamp": 5.0,
     "data": {"custom": {"answered": True, "body": "Ett ramavtal är …", "citations": [{"number": 1}]}}},
    {"event": "user", "text": '/feedback_good', "timestamp": 6.0},
    {"event": "bot", "text": "Tack, vad bra att det hjälpte.", "timestamp": 7.0},
    {"event": "user", "text": "/request_human", "timestamp": 8.0},
]


@pytest.fixture(scope="module")
def fake_rasa():
    seen = []

    class Handler(JsonHandler):
        def do_GET(self):  # noqa: N802
            seen.append((self.path, self.headers.get("Authorization")))
            self.reply_json({"events": EVENTS})

    server, base = serve(Handler)
    yield base, seen
    server.shutdown()


@pytest.fixture
def client(tiny_index, fake_embedder, fake_rasa, tmp_path):
    settings = ServiceSettings(**{**tiny_index.model_dump(), "rasa_url": fake_rasa[0], "webchat_secret": SECRET,
                                  "rasa_api_token": "rasa-api-token", "inbox_db": tmp_path / "inbox.sqlite3"})
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as c:
        app.state.engine_holder.get()
        c.settings = settings
        yield c


def test_history_turns_tracker_events_into_what_the_chat_showed():
    out = history_from_events(EVENTS)
    assert [(m.who, m.text, m.kind) for m in out] == [
        ("user", "Hej", None), ("bot", "Hej! Vad vill du veta?", None), ("user", "Varor", None),
        ("user", "Vad är ett ramavtal?", None), ("bot", "Ett ramavtal är … Källor: [1]", None),
        ("bot", "Tack, vad bra att det hjälpte.", None), ("user", "", "human")]
    assert out[1].buttons == [{"title": "Varor", "payload": '/inform{"purchase_kind": "varor"}'}]
    assert out[4].custom["citations"] == [{"number": 1}]


def test_history_needs_the_sessions_signed_token(client, fake_rasa):
    from assistant.inbox import Inbox

    mine = guard.issue_session(SECRET)
    other = guard.issue_session(SECRET)
    path = f"/api/webchat/{mine.session_id}/history"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer forged." + mine.token}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {other.token}"}).status_code == 403
    expired = guard.issue_session(SECRET, session_id=mine.session_id, now=0)
    assert client.get(path, headers={"Authorization": f"Bearer {expired.token}"}).status_code == 401

    Inbox(client.settings.inbox_db).add_staff_message(mine.sender_id, "Lisa", "Jag ringer dig.")
    r = client.get(path, headers={"Authorization": f"Bearer {mine.token}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["error"] is None and body["staff_after"] == 1
    assert [m["who"] for m in body["messages"]] == ["user", "bot", "user", "user", "bot", "bot", "user", "staff"]
    assert body["messages"][-1]["text"] == "Jag ringer dig."
    # The tracker of exactly this session, with a JWT that Rasa's scope check limits to it.
    path, auth = fake_rasa[1][-1]
    assert path == f"/conversations/web:{mine.session_id}/tracker"
    header, payload, signature = auth.removeprefix("Bearer ").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["user"] == {"username": mine.sender_id, "role": "user"} and claims["exp"] > time.time()
    expected = hmac.new(b"rasa-api-token", f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected


def test_document_files_only_for_listed_documents_with_a_safe_type(client):
    r = client.get("/documents/troskel/file")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
    assert "direktupphandling" in r.text
    # reserverat.md has no manifest entry but is indexed, so it is listed too; anything else is not.
    for bad in ("nope", "manifest.toml", "..%2Fmanifest.toml", "%2E%2E"):
        assert client.get(f"/documents/{bad}/file").status_code == 404, bad


def test_favicon_and_paragraph_page_links(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    hit = client.post("/api/search", json={"query": "ramavtal", "k": 1}).json()["hits"][0]
    page = client.get(f"/p/{hit['paragraph_id']}").text
    assert 'href="/"' in page and "Tillbaka till chatten" in page
    assert f'href="/documents/{hit["doc_id"]}/file"' in page
    assert "/static/paragraph.js" in page
    english = client.get(f"/p/{hit['paragraph_id']}?lang=en").text
    assert '<html lang="en">' in english and "Back to the chat" in english and 'href="/?lang=en"' in english
    missing = client.get("/p/nope")
    assert missing.status_code == 404 and "Tillbaka till chatten" in missing.text


def test_paragraph_page_shows_the_page_number_and_links_the_pdf_page(client, monkeypatch):
    engine = client.app.state.engine_holder.get()
    hit = client.post("/api/search", json={"query": "ramavtal", "k": 1}).json()["hits"][0]
    real = engine.paragraph

    def with_page(paragraph_id, neighbours=1):  # PDF sources carry page numbers; the tiny corpus is text
        ctx = real(paragraph_id, neighbours)
        return dataclasses.replace(ctx, paragraph=dataclasses.replace(ctx.paragraph, page=7))

    monkeypatch.setattr(engine, "paragraph", with_page)
    page = client.get(f"/p/{hit['paragraph_id']}").text
    assert "<span class=page>Sida 7</span>" in page
    assert "Page 7" in client.get(f"/p/{hit['paragraph_id']}?lang=en").text
