"""The HTTP contract of the knowledge service, through FastAPI's test client (fake embedder)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index.search import SearchEngine
from service.app import create_app
from service.settings import ServiceSettings


@pytest.fixture
def client(tiny_index, fake_embedder):
    settings = ServiceSettings(**tiny_index.model_dump())
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as c:
        app.state.engine_holder.get()  # the index loads in the background at start-up
        yield c


HIT_FIELDS = {"paragraph_id", "doc_id", "title", "year", "section", "page", "text", "score"}


def test_search_contract(client):
    r = client.post("/api/search", json={"query": "Vad är ett ramavtal?", "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"hits", "took_ms"}
    assert 1 <= len(body["hits"]) <= 3
    assert all(set(h) == HIT_FIELDS for h in body["hits"])
    assert "ramavtal" in body["hits"][0]["text"]
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert isinstance(body["took_ms"], float)


def test_k_defaults_to_five(client):
    r = client.post("/api/search", json={"query": "upphandling"})
    assert r.status_code == 200 and len(r.json()["hits"]) <= 5


@pytest.mark.parametrize(
    "payload",
    [
        {"query": ""},
        {"query": "    "},
        {"query": "a" * 5000},
        {"query": "IOP", "k": 0},
        {"query": "IOP", "k": -3},
        {"query": "IOP", "k": 10_000},
        {"query": "IOP", "k": "many"},
        {"query": None},
        {"k": 3},
        {"query": ["a", "list"]},
    ],
)
def test_bad_input_is_a_422_with_a_message(client, payload):
    r = client.post("/api/search", json=payload)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 5


def test_malformed_json_is_a_422(client):
    r = client.post("/api/search", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422


def test_documents_and_paragraph_context(client):
    docs = client.get("/api/documents").json()
    assert {d["doc_id"] for d in docs} == {"iop", "troskel", "reserverat"}
    assert next(d for d in docs if d["doc_id"] == "iop")["year"] == 2024
    hit = client.post("/api/search", json={"query": "överenskommelsen avtalstid", "k": 1}).json()["hits"][0]
    r = client.get(f"/api/paragraphs/{hit['paragraph_id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["paragraph"]["paragraph_id"] == hit["paragraph_id"]
    assert set(body) == {"paragraph", "before", "after"}
    assert client.get("/api/paragraphs/finns-inte").status_code == 404
    assert client.get(f"/api/paragraphs/{hit['paragraph_id']}?neighbours=99").status_code == 422


def test_health_reports_loading_until_the_index_is_ready(tiny_index, fake_embedder):
    import threading

    release = threading.Event()
    settings = ServiceSettings(**tiny_index.model_dump())

    def slow_factory():
        release.wait(10)
        return SearchEngine.load(settings, fake_embedder)

    app = create_app(settings, engine_factory=slow_factory)
    with TestClient(app) as c:
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        release.set()
        app.state.engine_holder.get()
        assert c.get("/health").json()["status"] == "ok"


def test_health_and_openapi(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["paragraphs"] >= 4 and health["model"] == "fake-embedder"
    spec = client.get("/openapi.json").json()
    assert "/api/search" in spec["paths"] and "/api/paragraphs/{paragraph_id}" in spec["paths"]
    docs = client.get("/docs")  # the interactive page, from the packaged Swagger UI (no CDN)
    assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text


def test_missing_index_gives_503_with_the_fix(tmp_path, tiny_knowledge, fake_embedder):
    settings = ServiceSettings(knowledge_dir=tiny_knowledge, index_dir=tmp_path / "none", model="fake-embedder")
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as c:
        r = c.post("/api/search", json={"query": "IOP"})
        assert r.status_code == 503 and "python -m index build" in r.json()["detail"]
        h = c.get("/health")
        assert h.status_code == 503 and "manifest.json" in h.json()["detail"]


def test_the_service_process_logs_its_own_events(tmp_path):
    """`python -m service` shows the app's INFO lines (the index loading, a rebuilt index swapped in), not
    only uvicorn's: before, only warnings and errors of the app reached the log."""
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_PORT=str(port), ASSISTANT_INDEX_DIR=str(tmp_path / "no-index"), ASSISTANT_LOG_LEVEL="info",
               ASSISTANT_INBOX_DB=str(tmp_path / "inbox.sqlite3"))
    proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=Path(__file__).resolve().parents[1], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None
                time.sleep(0.1)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "INFO assistant.service: loading the search index" in out
    assert "ERROR assistant.service: search is unavailable" in out and "python -m index build" in out
