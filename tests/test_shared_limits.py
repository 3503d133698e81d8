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


def test_a_slack_retry_that_reaches_another_replica_is_not_answered_twice(redis_server):
    """Slack retries a delivery it thinks was lost; behind a balancer the retry may reach another Rasa
    replica. Two processes running the real Slack channel on one Redis: the second ignores it."""
    from conftest import FakeSlackAPI
    from tests.test_boundaries import slack_event, slack_headers, SLACK_SECRET

    api = FakeSlackAPI()
    try:
        body, other = slack_event("fråga"), slack_event("en annan fråga")
        credentials = {"slack_token": "xoxb-test", "slack_signing_secret": SLACK_SECRET, "api_base_url": api.url,
                       "redis_url": redis_server.url(4)}
        request = {"path": "/webhooks/slack/webhook", "body": body, "headers": slack_headers(body)}
        first = probe({"channel": "slack", "on_message": "silent", "credentials": credentials, "requests": [request]})
        retry = {**request, "headers": {**slack_headers(body), "X-Slack-Retry-Num": "1"}}
        second = probe({"channel": "slack", "on_message": "silent", "credentials": credentials,
                        "requests": [retry, {"path": request["path"], "body": other, "headers": slack_headers(other)}]})
    finally:
        api.server.shutdown()
    assert [m["text"] for m in first["messages"]] == ["fråga"]
    assert [m["text"] for m in second["messages"]] == ["en annan fråga"]  # the retry was not processed again
    assert second["responses"][0]["headers"].get("x-slack-no-retry") == "1"


def test_the_inbox_counts_a_client_in_redis_for_every_action_server(redis_server, tmp_path):
    """Two action servers (two Inbox objects on one database and one Redis): a client's hand-overs are
    counted together, so opening conversations on both replicas gets it no more."""
    from assistant.inbox import Inbox, InboxLimited, InboxLimits

    url, db = redis_server.url(5), tmp_path / "inbox.sqlite3"
    a, b = (Inbox(db, InboxLimits(handoffs_per_client_hour=2), url) for _ in range(2))
    a.add_handoff("web:1", "fråga", "a@example.se", "sv", client="tag-shared")
    b.add_handoff("web:2", "fråga", "a@example.se", "sv", client="tag-shared")
    with pytest.raises(InboxLimited):
        a.add_handoff("web:3", "fråga", "a@example.se", "sv", client="tag-shared")
    b.add_handoff("web:4", "fråga", "b@example.se", "sv", client="tag-other")
