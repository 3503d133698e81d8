"""Client side of Rasa's HTTP API, as the staff inbox uses it (transcripts, and staff replies to Slack
and Teams users through bot/connectors/staff_reply.py).

Rasa runs with ``--jwt-secret`` = ``ASSISTANT_RASA_API_TOKEN`` (set by ``bot.launch`` from the
environment, never argv). The inbox sends a short-lived HS256 JWT as ``Authorization: Bearer`` whose
role is ``user`` and whose username is the one conversation it reads: Rasa's own scope check then
allows that conversation's endpoints only, never ``PUT /model`` or another conversation; nothing
secret goes into a URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from urllib.parse import quote

import httpx


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rasa_api_jwt(secret: str, username: str, role: str = "user", ttl: float = 60.0, now: float | None = None) -> str:
    """An HS256 JWT for Rasa's API: ``{"user": {"username", "role"}, "exp"}``."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps({"user": {"username": username, "role": role},
                               "exp": int((time.time() if now is None else now) + ttl)},
                              separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def tracker_url(rasa_url: str, sender_id: str) -> str:
    # Sender ids carry their channel (web:…, slack:…, rest:…); encoded, so no id can change the URL.
    return f"{rasa_url.rstrip('/')}/conversations/{quote(sender_id, safe=':')}/tracker"


class TranscriptCache:
    """Trackers fetched from Rasa, kept ``ttl`` seconds per conversation (an inbox view fetches only
    the conversations it shows, and at most once per ``ttl``)."""

    def __init__(self, rasa_url: str, secret: str | None, ttl: float = 30.0, max_entries: int = 500,
                 timeout: float = 10.0):
        self.rasa_url, self.secret, self.ttl, self.max_entries, self.timeout = rasa_url, secret, ttl, max_entries, timeout
        self._entries: dict[str, tuple[float, list[dict]]] = {}
        self._lock = threading.Lock()
        self.fetches = 0  # how many requests went to Rasa (for tests and logs)

    def events(self, sender_id: str) -> list[dict]:
        """The conversation's tracker events; raises httpx.HTTPError when Rasa cannot give them."""
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(sender_id)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        headers = {"Authorization": f"Bearer {rasa_api_jwt(self.secret, sender_id)}"} if self.secret else {}
        self.fetches += 1
        response = httpx.get(tracker_url(self.rasa_url, sender_id), headers=headers, timeout=self.timeout)
        response.raise_for_status()
        events = response.json().get("events", []) or []
        with self._lock:
            if len(self._entries) >= self.max_entries:
                oldest = min(self._entries, key=lambda k: self._entries[k][0])
                self._entries.pop(oldest, None)
            self._entries[sender_id] = (now, events)
        return events


DELIVERED_CHANNELS = ("slack", "teams")  # conversations whose staff replies Rasa delivers; web chats poll


class DeliveryError(Exception):
    """A staff reply that Rasa could not deliver (the reply itself is stored)."""


def deliver_staff_reply(rasa_url: str, secret: str | None, sender_id: str, author: str, text: str,
                        timeout: float = 20.0) -> str | None:
    """Send a staff reply to a Slack or Teams user through Rasa (the same connectors as the bot's
    messages); the channel it went to, or None for conversations that get replies otherwise (web chat).
    Raises DeliveryError when it could not be delivered."""
    channel = sender_id.split(":", 1)[0]
    if channel not in DELIVERED_CHANNELS:
        return None
    if not secret:
        raise DeliveryError("Rasa's API secret is not configured")
    token = rasa_api_jwt(secret, sender_id, role="staff_reply")
    try:
        response = httpx.post(f"{rasa_url.rstrip('/')}/webhooks/staff_reply/deliver", timeout=timeout,
                              json={"sender_id": sender_id, "author": author, "text": text},
                              headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise DeliveryError(f"Rasa unreachable ({exc.__class__.__name__})") from exc
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = None
        raise DeliveryError(f"{response.status_code} {detail or response.text[:200]}")
    return channel
