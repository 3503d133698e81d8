"""Liveness and readiness of the action server, next to rasa-sdk's own ``GET /health`` (which only says
the HTTP server runs):

    GET /health/live    200 {"status": "alive"}
    GET /health/ready   200/503 with each dependency (assistant/health.py): the answer engine (search
                        index and model loaded: required) and the inbox database (optional: without it
                        a hand-over is refused with a message, answers still work)
"""

from __future__ import annotations

import asyncio

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant.health import Check, check, inbox_probe, report
from assistant.runtime import Runtime


def engine_check(runtime: Runtime) -> Check:
    """Loaded or not; never loads it here (a probe must not take a minute)."""
    engine = runtime.ready_engine()
    if engine is None:
        return Check("answer_engine", False, "not loaded")
    return Check("answer_engine", True, f"{len(engine.index.paragraphs)} paragraphs, model {engine.index.manifest.model}")


def add_health_routes(app: Sanic, runtime: Runtime) -> None:
    @app.get("/health/live")
    async def live(_: Request) -> HTTPResponse:
        return response.json({"status": "alive"})

    @app.get("/health/ready")
    async def ready(_: Request) -> HTTPResponse:
        inbox = await asyncio.to_thread(check, "inbox", inbox_probe(lambda: runtime.inbox), False)
        code, body = report([engine_check(runtime), inbox])
        return response.json(body, status=code)
