"""Liveness and readiness (issue 11): the report's rules, the knowledge service's and the action
server's probes over a tiny index, and Rasa's health channel on a bare Sanic app (Rasa's env).
The same probes on the real running stack: tests/test_supervision.py."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.health import Check, check, inbox_probe, report
from index.search import SearchEngine
from service.app import create_app
from service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent


def test_a_failing_required_check_is_not_ready_an_optional_one_only_degraded():
    ok, down = Check("index", True, "12 paragraphs"), Check("inbox", False, "locked", required=False)
    assert report([ok]) == (200, {"status": "ready", "checks": {"index": {"ok": True, "detail": "12 paragraphs",
                                                                          "required": True}}})
    code, body = report([ok, down])
    assert code == 200 and body["status"] == "degraded" and body["checks"]["inbox"]["ok"] is False
    code, body = report([Check("index", False, "loading"), down])
    assert code == 503 and body["status"] == "not ready"


def test_a_probe_that_raises_is_a_failed_check_with_the_reason():
    def broken() -> str:
        raise sqlite3.OperationalError("unable to open database file")

    c = check("inbox", broken, required=False)
    assert c == Check("inbox", False, "OperationalError: unable to open database file", False)
    assert check("x", lambda: "fine") == Check("x", True, "fine", True)


def test_the_knowledge_service_reports_its_index_and_inbox(tiny_index, fake_embedder, tmp_path):
    settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3"})
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as client:
        app.state.engine_holder.get()
        assert client.get("/health/live").json() == {"status": "alive"}
        r = client.get("/health/ready")
        assert r.status_code == 200 and r.json()["status"] == "ready", r.text
        assert r.json()["checks"]["index"]["ok"] and r.json()["checks"]["inbox"]["detail"] == "reachable"

    # The inbox database cannot be opened (its folder is a file): search still works, degraded.
    (tmp_path / "blocked").write_text("not a folder")
    settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "blocked" / "inbox.sqlite3"})
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as client:
        app.state.engine_holder.get()
        r = client.get("/health/ready")
        assert r.status_code == 200 and r.json()["status"] == "degraded"
        assert r.json()["checks"]["inbox"]["ok"] is False and r.json()["checks"]["index"]["ok"] is True


def test_the_knowledge_service_is_not_ready_without_its_index(tiny_settings):
    settings = ServiceSettings(**tiny_settings.model_dump())  # nothing built at its index_dir
    app = create_app(settings)
    with TestClient(app) as client:
        app.state.engine_holder._ready.wait(30)
        r = client.get("/health/ready")
        assert r.status_code == 503 and r.json()["status"] == "not ready"
        assert r.json()["checks"]["index"]["ok"] is False and "index build" in r.json()["checks"]["index"]["detail"]
        assert client.get("/health/live").status_code == 200  # alive: restarting it would not help


def test_the_action_server_is_ready_only_with_its_engine_loaded(tiny_index, fake_embedder, tmp_path):
    from actions.health import engine_check

    from assistant.runtime import Runtime

    from assistant.settings import AssistantSettings

    settings = AssistantSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3"})
    runtime = Runtime(settings, SearchEngine.load(settings, fake_embedder))
    assert engine_check(runtime).ok is False  # the engine is there, the answerer not yet built
    runtime.answerer
    c = engine_check(runtime)
    assert c.ok and "paragraphs" in c.detail
    assert engine_check(Runtime(settings)).ok is False  # and the probe never loads it itself
    assert inbox_probe(lambda: runtime.inbox)() == "reachable"


RASA_HEALTH = """
import asyncio, json, sys
sys.path.insert(0, '.')
from bot.connectors.health import HealthInput, action_health_url, readiness

class Store:
    def __init__(self, fail): self.fail = fail
    async def retrieve(self, sender):
        if self.fail: raise ConnectionError('database is down')
        return None

class Endpoint:
    def __init__(self, url): self.url = url

class Agent:
    def __init__(self, ready, actions_url, tracker_fails=False):
        self.ready, self.action_endpoint, self.tracker_store = ready, Endpoint(actions_url), Store(tracker_fails)
    def is_ready(self): return self.ready

cases = json.loads(sys.argv[1])
channel = HealthInput.from_credentials({})
routes = sorted(r.uri for r in channel.blueprint(None)._future_routes)
out = {"url": action_health_url("http://a:5055/webhook"), "prefix": channel.url_prefix(), "routes": routes}
for name, case in cases.items():
    status, body = asyncio.run(readiness(Agent(**case) if case is not None else None))
    out[name] = {"status": status, "body": body}
print(json.dumps(out))
"""


def test_rasas_health_channel_reports_model_tracker_and_action_server(tmp_path):
    from conftest import JsonHandler, free_ports, serve

    class Ready(JsonHandler):
        def do_GET(self):  # noqa: N802
            self.reply_json({"status": "ready"} if self.path == "/health/ready" else {}, 200 if self.path ==
                            "/health/ready" else 404)

    server, url = serve(Ready)
    closed = f"http://127.0.0.1:{free_ports(1)[0]}/webhook"
    try:
        cases = {"up": {"ready": True, "actions_url": url + "/webhook"},
                 "actions_down": {"ready": True, "actions_url": closed},
                 "actions_wrong": {"ready": True, "actions_url": url + "/elsewhere/webhook"},
                 "tracker_down": {"ready": True, "actions_url": url + "/webhook", "tracker_fails": True},
                 "loading": {"ready": False, "actions_url": url + "/webhook"},
                 "no_agent": None}
        env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(ROOT)}
        done = subprocess.run([str(ROOT / ".venv-rasa" / "bin" / "python"), "-c", RASA_HEALTH, json.dumps(cases)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["url"] == "http://a:5055/health/ready"
    assert out["prefix"] == "/health" and out["routes"] == ["/live", "/ready"]  # Rasa mounts it at /health/…
    assert out["up"]["status"] == 200 and out["up"]["body"]["status"] == "ready"
    assert set(out["up"]["body"]["checks"]) == {"model", "tracker", "action_server"}
    down = out["actions_down"]
    assert down["status"] == 200 and down["body"]["status"] == "degraded"  # Rasa still replies (the fallback)
    assert down["body"]["checks"]["action_server"]["ok"] is False
    assert "unreachable" in down["body"]["checks"]["action_server"]["detail"]
    assert "answered 404" in out["actions_wrong"]["body"]["checks"]["action_server"]["detail"]
    tracker = out["tracker_down"]
    assert tracker["status"] == 503 and "database is down" in tracker["body"]["checks"]["tracker"]["detail"]
    assert out["loading"]["status"] == 503 and out["loading"]["body"]["checks"]["model"]["ok"] is False
    assert out["no_agent"]["status"] == 503


@pytest.mark.parametrize("value, expected", [("", True), ("true", True), ("True", True), ("false", False),
                                             ("0", False)])
def test_the_fast_loader_is_on_unless_turned_off(value, expected):
    from bot.launch import fast_load

    assert fast_load({"ASSISTANT_RASA_FAST_LOAD": value} if value else {}) is expected
    with pytest.raises(SystemExit):
        fast_load({"ASSISTANT_RASA_FAST_LOAD": "maybe"})
