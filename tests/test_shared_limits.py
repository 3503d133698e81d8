"""Rate limits counted in Redis for every replica together (assistant/shared_limits.py), on a real
Redis started for the session (tests/conftest.py), and through two REST channel processes in Rasa's
environment standing in for two Rasa replicas."""

from __future__ import annotations

import json
import time

import pytest

from assistant.guard import RateLimiter
from assistant.shared_limits import SharedRateLimiter, rate_limiter
from tests.conftest import free_ports
from tests.test_boundaries import WAIT_SV, probe, rest_requests

pytestmark = pytest.mark.slow  # a real redis-server


def test_two_replicas_share_one_limit(redis_server):
    url = redis_server.url(1)
    a, b = SharedRateLimiter(url, "t-share", 3), SharedRateLimiter(url, "t-share", 3)
    assert [a.allow("web:x"), b.allow("web:x"), a.allow("web:x")] == [True, True, True]
    assert not b.allow("web:x") and not a.allow("web:x")  # 3 in all, whichever replica counted them
    assert a.allow("web:y")  # another sender has its own count
    assert SharedRateLimiter(url, "t-share-other", 3).allow("web:x")  # and so has another kind of limit


def test_refused_messages_do_not_count_and_the_window_slides(redis_server):
    limiter = SharedRateLimiter(redis_server.url(1), "t-window", 2, window=1.0)
    assert [limiter.allow("k") for _ in range(5)] == [True, True, False, False, False]
    time.sleep(1.1)
    assert [limiter.allow("k") for _ in range(3)] == [True, True, False]  # refusals added nothing


def test_forget_last_takes_back_one_message_for_every_replica(redis_server):
    url = redis_server.url(1)
    a, b = SharedRateLimiter(url, "t-forget", 2), SharedRateLimiter(url, "t-forget", 2)
    assert a.allow("k") and a.allow("k") and not b.allow("k")
    a.forget_last("k")  # another limit refused a's latest message
    assert b.allow("k") and not b.allow("k")


def test_redis_holds_no_sender_id_and_keys_expire(redis_server):
    import redis

    url = redis_server.url(2)
    client = redis.Redis.from_url(url)
    client.flushdb()
    SharedRateLimiter(url, "t-keys", 5, window=30).allow("slack:T1:U-secret-member")
    keys = client.keys("*")
    assert len(keys) == 1 and b"U-secret-member" not in keys[0] and keys[0].startswith(b"assistant:rate:t-keys:")
    assert 0 < client.pttl(keys[0]) <= 31_000


def test_unreachable_redis_falls_back_to_this_process_and_never_raises(caplog):
    port = free_ports(1)[0]  # nothing listens there
    limiter = SharedRateLimiter(f"redis://127.0.0.1:{port}/0", "t-down", 2, timeout=0.2)
    assert [limiter.allow("k") for _ in range(3)] == [True, True, False]
    limiter.forget_last("k")
    assert limiter.allow("k")
    assert sum("Redis unreachable" in r.getMessage() for r in caplog.records) == 1  # once a minute, not per message


def test_without_redis_the_limit_is_in_memory():
    assert isinstance(rate_limiter(3, "x"), RateLimiter)
    assert isinstance(rate_limiter(3, "x", "redis://127.0.0.1:1/0"), SharedRateLimiter)
    with pytest.raises(ValueError):
        SharedRateLimiter("http://127.0.0.1:1/0", "x")


def test_two_rest_channel_processes_count_one_sender_together(redis_server):
    """Two processes running the real REST channel code (as two Rasa replicas behind a balancer) with
    the same Redis: a sender's third message is refused by the second process though it counted none."""
    credentials = {"allow_loopback_without_token": True, "messages_per_minute": 2,
                   "redis_url": redis_server.url(3)}
    first = probe({"channel": "rest", "on_message": "answer", "credentials": credentials,
                   "requests": rest_requests(("me", "fråga 1"), ("me", "fråga 2"))})
    second = probe({"channel": "rest", "on_message": "answer", "credentials": credentials,
                    "requests": rest_requests(("me", "fråga 3"), ("other", "fråga"))})
    assert [r["status"] for r in first["responses"]] == [200, 200]
    assert [r["status"] for r in second["responses"]] == [429, 200]
    assert json.loads(second["responses"][0]["body"]) == [{"recipient_id": "rest:me", "text": WAIT_SV}]
    assert [m["text"] for m in second["messages"]] == ["fråga"]  # the refused one never reached Rasa
