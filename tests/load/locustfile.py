"""Locust users for ``make loadtest`` (run by tests/load/run.py; usable alone with ``locust -f``).

ChatUser   POSTs questions to Rasa's REST channel (LOADTEST_CHAT_URL), three per conversation, each
           conversation a new sender so the per-sender rate limit is not what is measured.
SearchUser POSTs them to the knowledge service's /api/search (LOADTEST_SEARCH_URL).

Questions are a fixed sample of knowledge/questions/ (the example questions people's wording was
modelled on), never the evaluation sets. Both users are closed-loop (no wait between requests), so
the figures are the most the stack serves at that concurrency. A reply that is not an answer — an
empty list, or the "many are asking right now" admission message — counts as a failure.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path

from locust import FastHttpUser, task

ROOT = Path(__file__).resolve().parents[2]
BUSY_MARKERS = ("Många frågar just nu", "Many people are asking right now")


def sample_questions(n: int = 300, seed: int = 7) -> list[str]:
    lines = []
    for path in sorted((ROOT / "knowledge" / "questions").glob("*.jsonl")):
        lines += [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(lines)
    return [q for q in lines if len(q) <= 500][:n]


QUESTIONS = sample_questions()


class ChatUser(FastHttpUser):
    host = os.environ.get("LOADTEST_CHAT_URL", "http://127.0.0.1:5005")
    weight = int(os.environ.get("LOADTEST_CHAT_WEIGHT", "1"))

    def on_start(self) -> None:
        self.rng = random.Random()
        self.sender, self.sent = None, 0

    @task
    def ask(self) -> None:
        if self.sent % 3 == 0:
            self.sender = f"load-{uuid.uuid4().hex}"
        self.sent += 1
        headers = {"Authorization": f"Bearer {os.environ['ASSISTANT_REST_TOKEN']}"} \
            if os.environ.get("ASSISTANT_REST_TOKEN") else {}
        body = {"sender": self.sender, "message": self.rng.choice(QUESTIONS)}
        with self.client.post("/webhooks/rest/webhook", json=body, headers=headers, name="chat",
                              catch_response=True) as response:
            try:
                replies = response.json()
            except Exception:  # noqa: BLE001 - any unreadable reply is a failure to report
                response.failure(f"HTTP {response.status_code}, not JSON")
                return
            text = " ".join(str(r.get("text") or "") for r in replies) if isinstance(replies, list) else ""
            if response.status_code != 200 or not replies:
                response.failure(f"HTTP {response.status_code}, {len(replies) if isinstance(replies, list) else 0} replies")
            elif any(marker in text for marker in BUSY_MARKERS):
                response.failure("busy (admission control)")
            else:
                response.success()


class SearchUser(FastHttpUser):
    host = os.environ.get("LOADTEST_SEARCH_URL", "http://127.0.0.1:8000")
    weight = int(os.environ.get("LOADTEST_SEARCH_WEIGHT", "1"))

    def on_start(self) -> None:
        self.rng = random.Random()

    @task
    def search(self) -> None:
        with self.client.post("/api/search", json={"query": self.rng.choice(QUESTIONS), "k": 5}, name="search",
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif not response.json().get("hits"):
                response.failure("no hits")
            else:
                response.success()
