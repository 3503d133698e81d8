"""Liveness and readiness of Rasa, as a channel (Rasa mounts a channel's routes at its ``url_prefix``):

    GET /health/live    200 {"status": "alive"}
    GET /health/ready   200/503, same shape as the other processes (assistant/health.py):
                        model     loaded (required)
                        tracker   the tracker store answers a read (required: no conversation without it)
                        action_server  its /health/ready answers 200 (optional: while it is down Rasa
                                  still replies, with the fallback message, so it stays in rotation;
                                  the report says "degraded")

Rasa's own ``GET /`` says only that the HTTP server runs. Enabled by ``python -m service.stack`` in
every credentials file it writes (``bot.connectors.health.HealthInput: {}``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Dict, Optional, Text

import aiohttp
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant.health import Check, report

PROBE_SECONDS = 2.0


def action_health_url(webhook_url: Text) -> Text:
    """http://host:5055/webhook → http://host:5055/health/ready"""
    base = webhook_url.rstrip("/")
    if base.endswith("/webhook"):
        base = base[: -len("/webhook")]
    return base + "/health/ready"


async def action_server_check(agent: Any) -> Check:
    endpoint = getattr(agent, "action_endpoint", None)
    if endpoint is None or not endpoint.url:
        return Check("action_server", False, "no action endpoint configured", required=False)
    url = action_health_url(endpoint.url)
    try:
        timeout = aiohttp.ClientTimeout(total=PROBE_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as r:
            if r.status == 200:
                return Check("action_server", True, "ready", required=False)
            return Check("action_server", False, f"{url} answered {r.status}", required=False)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return Check("action_server", False, f"{url} unreachable ({exc.__class__.__name__})", required=False)


async def tracker_check(agent: Any) -> Check:
    try:
        await asyncio.wait_for(agent.tracker_store.retrieve("health-probe"), PROBE_SECONDS * 2)
        return Check("tracker", True, "reachable")
    except Exception as exc:  # noqa: BLE001 - any failure means no conversation can be stored
        return Check("tracker", False, f"{exc.__class__.__name__}: {exc}"[:300])


async def readiness(agent: Optional[Any]) -> tuple[int, Dict[Text, Any]]:
    if agent is None or not agent.is_ready():
        return report([Check("model", False, "not loaded")])
    tracker, actions = await asyncio.gather(tracker_check(agent), action_server_check(agent))
    return report([Check("model", True, "loaded"), tracker, actions])


class HealthInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "health"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "HealthInput":
        return cls()

    def url_prefix(self) -> Text:
        return "/health"  # urljoin("/webhooks/", "/health") == "/health"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        health = Blueprint("assistant_health", __name__)

        @health.get("/live")
        async def live(_: Request) -> HTTPResponse:
            return response.json({"status": "alive"})

        @health.get("/ready")
        async def ready(request: Request) -> HTTPResponse:
            code, body = await readiness(getattr(request.app.ctx, "agent", None))
            return response.json(body, status=code)

        return health
