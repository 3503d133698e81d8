"""Liveness and readiness reports shared by the knowledge service and the action server.

    GET /health/live    200 {"status": "alive"} while the process serves HTTP at all
    GET /health/ready   200 when the process can do its job, 503 when it cannot; the body lists each
                        dependency: {"status": "ready" | "degraded" | "not ready",
                                     "checks": {name: {"ok": bool, "required": bool, "detail": str}}}

A *required* check that fails makes the process not ready (503: a load balancer or Kubernetes takes
it out of rotation). A failing optional check only degrades it (200, "degraded"): e.g. the inbox
database, without which a hand-over is refused with a message but questions are still answered.
Rasa's own report (the model, the action server) is in bot/connectors/health.py and has the same shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def report(checks: list[Check]) -> tuple[int, dict[str, Any]]:
    """HTTP status and body of a readiness report."""
    if not all(c.ok for c in checks if c.required):
        status, code = "not ready", 503
    elif not all(c.ok for c in checks):
        status, code = "degraded", 200
    else:
        status, code = "ready", 200
    return code, {"status": status,
                  "checks": {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in checks}}


def check(name: str, probe: Callable[[], str], required: bool = True) -> Check:
    """Runs ``probe`` (returns a detail, raises when the dependency is not there)."""
    try:
        return Check(name, True, probe(), required)
    except Exception as exc:  # noqa: BLE001 - the report must say what is wrong, whatever it is
        return Check(name, False, f"{exc.__class__.__name__}: {exc}"[:300], required)


def inbox_probe(open_inbox: Callable[[], Any]) -> Callable[[], str]:
    """Reads one hand-over request: the inbox database answers (whatever backend it is on)."""

    def probe() -> str:
        inbox = open_inbox()
        inbox.handoffs(limit=1)
        return "reachable"

    return probe
