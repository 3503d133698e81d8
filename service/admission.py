"""Admission control for the knowledge service's API: past a number of requests in progress, 503 at once.

Searching is CPU-bound (the question's embedding); on two cores, requests beyond a few in progress
only queue, and each waits longer (measured before: 40 users, p50 2.4 s). Past
``ASSISTANT_MAX_SEARCHES_IN_FLIGHT`` API requests in progress, a new one gets 503 with Retry-After
and a message saying so, at once. Only the search API counts (/api/search, /api/paragraphs, /api/documents): pages,
the web chat's routes, the staff inbox and /health never wait behind searches.
"""

from __future__ import annotations

import json
import logging
import threading

log = logging.getLogger("assistant.service")

BUSY_DETAIL = "Många frågar just nu – försök igen om en stund. (Many people are asking right now – please try again in a moment.)"
RETRY_AFTER_SECONDS = 2


class InFlightLimit:
    """ASGI middleware: at most ``limit`` requests under ``prefixes`` in progress (0 = no limit)."""

    def __init__(self, app, limit: int, prefixes: tuple[str, ...] = ("/api/search", "/api/paragraphs", "/api/documents")):
        self.app = app
        self.limit = limit
        self.prefixes = prefixes
        self.in_flight = 0
        self.refused = 0
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.limit or not scope.get("path", "").startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        with self._lock:
            admitted = self.in_flight < self.limit
            if admitted:
                self.in_flight += 1
            else:
                self.refused += 1
        if not admitted:
            log.warning("busy: %d API requests in progress, refused %s", self.limit, scope.get("path"))
            body = json.dumps({"detail": BUSY_DETAIL}, ensure_ascii=False).encode()
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"), (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self.in_flight -= 1
