"""Closed-loop chat load on Rasa's REST channel: ``python -m service.chatbench URL [--users 10] [--seconds 60]``.

Each simulated user keeps one conversation and sends the next question as soon as the last reply
arrived. Prints messages per second, p50/p95 latency and errors. (``make loadtest`` with Locust is the
fuller tool; this is the quick comparison of 1 and 2 Rasa replicas in README, "Scaling out".)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import httpx

QUESTIONS = [
    "Vad är ett idéburet offentligt partnerskap?", "Vad är ett ramavtal?", "fler",
    "Vad är reserverad upphandling?", "visa källan", "Hur hög är direktupphandlingsgränsen?",
    "Vad är tröskelvärdet för sociala tjänster?", "Hur kan vi marknadsföra oss under ett ramavtal?",
]


async def user(client: httpx.AsyncClient, url: str, stop: float, latencies: list, errors: list) -> None:
    sender = "bench-" + uuid.uuid4().hex[:10]
    i = 0
    while time.monotonic() < stop:
        started = time.perf_counter()
        try:
            r = await client.post(url, json={"sender": sender, "message": QUESTIONS[i % len(QUESTIONS)]})
            if r.status_code != 200 or not r.json():
                errors.append(r.status_code)
            else:
                latencies.append(time.perf_counter() - started)
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
        i += 1


async def run(url: str, users: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list = []
    async with httpx.AsyncClient(timeout=120) as client:
        stop = time.monotonic() + seconds
        started = time.monotonic()
        await asyncio.gather(*(user(client, url, stop, latencies, errors) for _ in range(users)))
        elapsed = time.monotonic() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else [float("nan")] * 19
    return {"users": users, "messages": len(latencies), "msg_per_s": round(len(latencies) / elapsed, 2),
            "p50_ms": round(statistics.median(latencies) * 1000) if latencies else None,
            "p95_ms": round(q[18] * 1000) if latencies else None, "errors": len(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="Rasa (or the balancer), e.g. http://127.0.0.1:5005")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    print(asyncio.run(run(args.url.rstrip("/") + "/webhooks/rest/webhook", args.users, args.seconds)))


if __name__ == "__main__":
    main()
