"""The staff inbox reading transcripts from Rasa, against a real local HTTP server standing in for
Rasa: hostile sender ids cannot change the URL the inbox asks for (issue 10: `x?y` showed the admin
token, `../../conversations/VICTIM/tracker?` another person's transcript), the token goes in a header
scoped to that one conversation, never in the URL, and Rasa's error text never reaches the page."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

STAFF = "staff-token-for-the-tests-0123456789"
HOSTILE = ["x?y", "../../conversations/VICTIM/tracker?", "web:a/b#c", "web:%2e%2e/admin", "web:ok"]
LEAK = "RASA-INTERNAL-DETAIL token=abc123"


class FakeRasa(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        FakeRasa.seen.append((self.path, self.headers.get("Authorization", "")))
        body = LEAK.encode() if "VICTIM" in self.path else json.dumps({"events": []}).encode()
        self.send_response(500 if "VICTIM" in self.path else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_rasa():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRasa)
    FakeRasa.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def jwt_username(authorization: str) -> str:
    payload = authorization.split()[1].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["user"]["username"]


def test_hostile_sender_ids_cannot_change_the_url_and_rasa_errors_stay_off_the_page(
        tiny_index, fake_embedder, tmp_path, fake_rasa):
    from fastapi.testclient import TestClient

    from assistant.inbox import Inbox
    from index.search import SearchEngine
    from service.app import create_app
    from service.settings import ServiceSettings

    settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3",
                                  "inbox_token": STAFF, "rasa_url": fake_rasa,
                                  "rasa_api_token": "rasa-api-secret-for-the-tests-0123"})
    inbox = Inbox(settings.inbox_db)
    for sender in HOSTILE:
        inbox.add_handoff(sender, "Vad är IOP?", "a@example.se", "sv")
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as client:
        r = client.get("/api/inbox/requests", headers={"Authorization": f"Bearer {STAFF}"})
        page = client.get("/inbox", cookies={"inbox_session": client.post(
            "/inbox/login", data={"token": STAFF}, follow_redirects=False).cookies["inbox_session"]})
    assert r.status_code == 200 and page.status_code == 200
    assert len(FakeRasa.seen) >= len(HOSTILE)
    for path, authorization in FakeRasa.seen:
        assert path.startswith("/conversations/") and path.endswith("/tracker"), path
        assert path.count("/") == 3 and "?" not in path and "#" not in path, path  # one encoded segment
        assert "token" not in path.lower()
    # Each request carries a JWT for exactly the conversation it reads, never the secret itself.
    assert {jwt_username(a) for _, a in FakeRasa.seen} == set(HOSTILE)
    assert all("rasa-api-secret" not in a for _, a in FakeRasa.seen)
    rows = {row["sender_id"]: row for row in r.json()}
    victim = rows["../../conversations/VICTIM/tracker?"]
    assert victim["transcript"] == [] and victim["transcript_error"] == "Konversationen kunde inte hämtas från Rasa just nu."
    assert LEAK not in r.text and LEAK not in page.text and "abc123" not in page.text
    assert rows["web:ok"]["transcript_error"] is None


@pytest.mark.parametrize("public_url, origin, allowed", [
    ("https://chat.example.se", "https://chat.example.se", True),   # behind a TLS-terminating proxy
    ("https://chat.example.se", "https://evil.example", False),
    ("", "https://chat.example.se", False),                          # not configured: only its own address
    ("", None, True),                                                # no Origin header (not a browser post)
])
def test_staff_can_log_in_behind_an_https_proxy_and_nowhere_else(tiny_index, fake_embedder, tmp_path,
                                                                   public_url, origin, allowed):
    from fastapi.testclient import TestClient

    from index.search import SearchEngine
    from service.app import create_app
    from service.settings import ServiceSettings

    settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3",
                                  "inbox_token": STAFF, "public_url": public_url})
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as client:  # requests arrive as http://testserver, as from a proxy
        r = client.post("/inbox/login", data={"token": STAFF}, follow_redirects=False,
                        headers={"Origin": origin} if origin else {})
    assert (r.status_code == 303) is allowed, r.status_code
    if allowed:
        assert ("secure" in r.headers["set-cookie"].lower()) is public_url.startswith("https://")


def test_public_url_must_be_an_origin():
    from pydantic import ValidationError

    from service.settings import ServiceSettings

    assert ServiceSettings(public_url="https://Chat.Example.se/").public_url == "https://chat.example.se"
    for bad in ("chat.example.se", "https://chat.example.se/inbox", "ftp://x", "https://x?a=1"):
        with pytest.raises(ValidationError):
            ServiceSettings(public_url=bad)
