"""Issue 10: limits per client address, on top of the per-sender ones (fast, no running Rasa).

A new web chat session or REST sender id costs a client nothing, so per-conversation limits alone let
one client open as many conversations as it likes. These tests check the per-address limits in the
web chat (new sessions per hour, messages per minute over all sessions), in the REST channel (429 +
Retry-After) and on the staff inbox's login, and which address counts: the socket's peer, or the
X-Forwarded-For entry past the trusted proxies (ASSISTANT_TRUSTED_PROXIES), never what a client
writes into that header itself.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from assistant import guard
from test_boundaries import probe

TRUSTED = guard.trusted_networks("127.0.0.1, 10.0.0.0/8, 2001:db8:1::/48")


# -- which address counts -------------------------------------------------------------------------
@pytest.mark.parametrize("peer, forwarded, expected", [
    ("203.0.113.9", None, "203.0.113.9"),
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not from a trusted proxy: the header is ignored
    ("127.0.0.1", None, "127.0.0.1"),
    ("127.0.0.1", "198.51.100.1", "198.51.100.1"),  # our proxy says who its client was
    ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own entry (left) is not believed
    ("127.0.0.1", "198.51.100.1, 10.1.2.3", "198.51.100.1"),  # past a second trusted proxy
    ("127.0.0.1", "10.1.2.3, 10.9.9.9", "10.1.2.3"),  # only trusted hops: the farthest one
    ("127.0.0.1", "not-an-ip, 198.51.100.1", "198.51.100.1"),
    ("127.0.0.1", "198.51.100.1, garbage", "127.0.0.1"),  # a bad entry from our own proxy: stop at the proxy
    ("127.0.0.1", "[2001:db8:2::5]:4711", "2001:db8:2::5"),
    ("127.0.0.1", "198.51.100.1:4711", "198.51.100.1"),
    ("::ffff:127.0.0.1", "198.51.100.1", "198.51.100.1"),  # an IPv4-mapped peer is that IPv4 address
    ("2001:db8:1::7", "198.51.100.1", "198.51.100.1"),
    ("", "198.51.100.1", "unknown"),
    (None, None, "unknown"),
])
def test_client_address_believes_forwarded_for_only_from_trusted_proxies(peer, forwarded, expected):
    assert guard.client_address(peer, forwarded, TRUSTED) == expected


def test_without_trusted_proxies_the_peer_is_the_client():
    assert guard.client_address("127.0.0.1", "198.51.100.1", guard.trusted_networks("")) == "127.0.0.1"
    huge = ", ".join(["10.0.0.1"] * 100_000)  # bounded work on a hostile header
    started = time.perf_counter()
    assert guard.client_address("127.0.0.1", huge, TRUSTED) == "10.0.0.1"
    assert time.perf_counter() - started < 0.05


def test_trusted_proxies_must_be_addresses():
    with pytest.raises(ValueError, match="ASSISTANT_TRUSTED_PROXIES"):
        guard.trusted_networks("127.0.0.1, proxy.example")
    from pydantic import ValidationError

    from service.settings import ServiceSettings

    with pytest.raises(ValidationError):
        ServiceSettings(trusted_proxies="10.0.0.0/33")


def test_ipv6_clients_count_per_64():
    assert guard.address_key("2001:db8:aa:bb:1::1") == guard.address_key("2001:db8:aa:bb:ffff::9")
    assert guard.address_key("2001:db8:aa:bb::1") != guard.address_key("2001:db8:aa:bc::1")
    assert guard.address_key("198.51.100.1") != guard.address_key("198.51.100.2")


def test_an_address_limit_counts_all_its_conversations_once():
    per_sender = guard.RateLimiter(2)
    per_address = guard.RateLimiter(3)
    verdicts = [guard.rate_refusal(per_sender, sender, "hej", per_address, "198.51.100.1")
                for sender in ("a", "b", "c", "d", "a")]
    assert [v.reason if v else None for v in verdicts] == [None, None, None, "address_rate_limited",
                                                           "address_rate_limited"]
    assert verdicts[3].text == guard.RATE_LIMITED["sv"]
    # The refused messages did not use up the conversations' own allowance: "d" may talk elsewhere.
    assert guard.rate_refusal(per_sender, "d", "hej", per_address, "198.51.100.2") is None
    assert guard.rate_refusal(per_sender, "d", "hej", per_address, "198.51.100.2") is None
    english = guard.rate_refusal(per_sender, "e", "what is the threshold for this?", per_address, "198.51.100.1")
    assert english.text == guard.RATE_LIMITED["en"]


# -- the web chat: sessions and messages per address -----------------------------------------------
WEBCHAT = {"session_secret": "w" * 40, "messages_per_minute": 20, "messages_per_address_minute": 3,
           "sessions_per_address_hour": 2}


def xff(address: str) -> dict:
    return {"X-Forwarded-For": address}


def test_web_chat_limits_sessions_and_messages_per_address_behind_a_trusted_proxy():
    out = probe({"channel": "webchat", "credentials": {**WEBCHAT, "trusted_proxies": "127.0.0.1"}, "clients": [
        {"headers": xff("203.0.113.1"), "say": ["a1", "a2"]},
        {"headers": xff("203.0.113.1"), "say": ["b1", "b2"]},  # a second session of the same address
        {"headers": xff("203.0.113.1"), "say": ["c1"], "lang": "en"},  # a third session: refused
        {"headers": xff("6.6.6.6, 198.51.100.7"), "say": ["d1"]},  # another client (its own entry is ignored)
    ]})
    a, b, c, d = out["clients"]
    assert a["confirmed"] and b["confirmed"] and d["confirmed"]
    assert not c["confirmed"] and c["before"] == [{"text": guard.TOO_MANY_SESSIONS["en"]}]
    assert b["replies"][1] == [{"text": guard.RATE_LIMITED["sv"]}]  # the address's 4th message in a minute
    assert [m["text"] for m in out["messages"]] == ["a1", "a2", "b1", "d1"]
    assert len({m["sender_id"] for m in out["messages"]}) == 3


def test_web_chat_ignores_forwarded_for_from_an_untrusted_peer():
    out = probe({"channel": "webchat", "credentials": WEBCHAT, "clients": [
        {"headers": xff(f"203.0.113.{i}"), "say": [f"m{i}"]} for i in range(1, 4)]})
    # Without trusted proxies every client here is 127.0.0.1, whatever it writes in the header.
    assert [c["confirmed"] for c in out["clients"]] == [True, True, False]
    assert out["clients"][2]["before"] == [{"text": guard.TOO_MANY_SESSIONS["sv"]}]
    assert [m["text"] for m in out["messages"]] == ["m1", "m2"]


def test_a_known_session_is_renewed_even_when_its_address_is_over_the_limit():
    out = probe({"channel": "webchat", "credentials": {**WEBCHAT, "sessions_per_address_hour": 1}, "clients": [
        {"say": ["first"]}, {"say": ["refused"]}, {"say": ["after a reload"], "reuse": True}]})
    first, refused, reloaded = out["clients"]
    assert [c["confirmed"] for c in out["clients"]] == [True, False, True]
    assert reloaded["token"].split(".")[0] == first["token"].split(".")[0]  # the same conversation, renewed
    assert [(m["text"], m["sender_id"]) for m in out["messages"]] == [
        ("first", "web:" + first["token"].split(".")[0]), ("after a reload", "web:" + first["token"].split(".")[0])]


# -- REST: per address, 429 with Retry-After ---------------------------------------------------------
REST_TOKEN = "r" * 32


def rest_request(sender: str, address: str | None) -> dict:
    headers = {"Authorization": f"Bearer {REST_TOKEN}", **(xff(address) if address else {})}
    return {"path": "/webhooks/rest/webhook", "json": {"sender": sender, "message": "hej"}, "headers": headers}


@pytest.mark.parametrize("trusted", ["127.0.0.1", ""])
def test_rest_limits_each_client_address(trusted):
    out = probe({"channel": "rest", "on_message": "answer", "credentials": {
        "token": REST_TOKEN, "messages_per_minute": 20, "messages_per_address_minute": 2,
        "trusted_proxies": trusted}, "requests": [
        rest_request("s1", "203.0.113.1"), rest_request("s2", "203.0.113.1"), rest_request("s3", "203.0.113.1"),
        rest_request("s4", "198.51.100.7")]})
    statuses = [r["status"] for r in out["responses"]]
    if trusted:  # the proxy names two clients: the first has used its two messages, the second has not
        assert statuses == [200, 200, 429, 200]
    else:  # everyone is the peer 127.0.0.1
        assert statuses == [200, 200, 429, 429]
    refused = out["responses"][2]
    assert refused["headers"]["retry-after"] == "60"
    assert json.loads(refused["body"]) == [{"recipient_id": "rest:s3", "text": guard.RATE_LIMITED["sv"]}]
    assert [m["sender_id"] for m in out["messages"]] == ["rest:s1", "rest:s2"] + (["rest:s4"] if trusted else [])


# -- the staff inbox's login, served by uvicorn as `python -m service` serves it -------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tiny_index, fake_embedder, tmp_path):
    """The web service on a real port, with the same uvicorn configuration as `python -m service`."""
    import uvicorn

    from index.search import SearchEngine
    from service.__main__ import server_config
    from service.app import create_app
    from service.settings import ServiceSettings

    servers = []

    def start(**overrides) -> str:
        settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3",
                                      "inbox_token": "staff-token-0123456789", "rasa_url": "http://127.0.0.1:9",
                                      "port": _free_port(), "log_level": "warning", "inbox_login_failures": 2,
                                      **overrides})
        app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
        server = uvicorn.Server(server_config(settings, app))
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        base = f"http://127.0.0.1:{settings.port}"
        for _ in range(200):
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                return base
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the service did not start")

    yield start
    for server in servers:
        server.should_exit = True


def wrong_login(base: str, address: str) -> int:
    return httpx.post(base + "/inbox/login", data={"token": "wrong"}, headers=xff(address),
                      follow_redirects=False, timeout=10).status_code


def test_inbox_login_throttle_cannot_be_dodged_with_forwarded_for(served):
    base = served()
    # From 127.0.0.1 with a new X-Forwarded-For each time: still one client (no trusted proxy).
    assert [wrong_login(base, f"198.51.100.{i}") for i in range(1, 5)] == [303, 303, 429, 429]


def test_inbox_login_throttle_counts_each_client_behind_a_trusted_proxy(served):
    base = served(trusted_proxies="127.0.0.1")
    assert [wrong_login(base, "198.51.100.1") for _ in range(3)] == [303, 303, 429]
    assert wrong_login(base, "198.51.100.2") == 303  # another person behind the same proxy is not locked out
    assert wrong_login(base, "6.6.6.6, 198.51.100.1") == 429  # writing an address in front changes nothing


def test_search_is_limited_per_client_address(served):
    base = served(search_per_address_minute=3, trusted_proxies="127.0.0.1")

    def search(address: str) -> httpx.Response:
        return httpx.post(base + "/api/search", json={"query": "Vad är IOP?", "k": 1}, headers=xff(address),
                          timeout=30)

    assert [search("198.51.100.1").status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = search("198.51.100.1")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60" and "sökningar" in refused.json()["detail"]
    assert search("198.51.100.2").status_code == 200  # someone else behind the same proxy


# -- metadata: an allow-list --------------------------------------------------------------------------
def test_only_feedback_metadata_is_kept_and_checked():
    target = {"question": "Vad är IOP?", "paragraph_ids": ["p1", 7, "x" * 500] + [f"q{i}" for i in range(20)],
              "reason": "outdated", "extra": "x"}
    kept = guard.allowed_metadata({"feedback_for": target, "blob": "x" * 1000, "out_channel": "C1"})
    assert kept == {"feedback_for": {"question": "Vad är IOP?", "paragraph_ids": ["p1"] + [f"q{i}" for i in range(9)],
                                     "reason": "outdated"}}
    assert guard.allowed_metadata({"feedback_for": {"reason": "=HYPERLINK()", "question": 12}}) == {"feedback_for": {}}
    assert guard.allowed_metadata({"blob": "x"}) == {} and guard.allowed_metadata("nonsense") == {}
    # The page's interface language, "sv" or "en" only.
    assert guard.allowed_metadata({"lang": "en", "blob": "x"}) == {"lang": "en"}
    assert guard.allowed_metadata({"lang": "<b>", "feedback_for": {"reason": "outdated"}}) == {
        "feedback_for": {"reason": "outdated"}}
    assert guard.allowed_metadata({"lang": ["en"]}) == {}
    assert guard.allowed_metadata({"feedback_for": {"question": "x" * 3000}}) == {"feedback_for": {}}  # > a message
    assert guard.allowed_metadata({"feedback_for": {"question": "x" * 5000}}) == {}  # over the byte cap: dropped


def test_web_chat_and_rest_pass_only_allowed_metadata_to_rasa():
    custom = {"feedback_for": {"question": "Vad är IOP?", "paragraph_ids": ["p1"], "junk": 1}, "blob": "x" * 100,
              "sender_id": "web:someone-else"}
    web = probe({"channel": "webchat", "on_message": "answer", "credentials": WEBCHAT,
                 "say": [{"message": "/feedback_good", "customData": custom}]})
    rest = probe({"channel": "rest", "on_message": "answer", "credentials": {"token": REST_TOKEN},
                  "requests": [{"path": "/webhooks/rest/webhook", "headers": {"Authorization": f"Bearer {REST_TOKEN}"},
                                "json": {"sender": "s", "message": "/feedback_good", "metadata": custom}}]})
    expected = {"feedback_for": {"question": "Vad är IOP?", "paragraph_ids": ["p1"]}}
    # The web chat adds its own tag of the client's address (the inbox's per-client limits); REST does not.
    assert [m["metadata"] for m in web["messages"]] == [
        {**expected, guard.CLIENT_TAG: guard.client_tag(WEBCHAT["session_secret"], "127.0.0.1")}]
    assert [m["metadata"] for m in rest["messages"]] == [expected]


# -- the channel file carries the limits -----------------------------------------------------------
def test_the_channel_file_carries_the_per_address_limits(tmp_path):
    import yaml

    from service.stack import StackSettings, write_credentials

    settings = StackSettings(log_dir=tmp_path / "log", trusted_proxies="10.0.0.0/8", messages_per_address_minute=7,
                             rest_messages_per_address_minute=70, webchat_sessions_per_address_hour=5)
    channels = yaml.safe_load(write_credentials(settings).read_text(encoding="utf-8"))
    web = channels["bot.connectors.webchat.WebChatInput"]
    rest = channels["bot.connectors.rest.GuardedRestInput"]
    assert (web["messages_per_address_minute"], web["sessions_per_address_hour"], web["trusted_proxies"]) == \
        (7, 5, "10.0.0.0/8")
    assert (rest["messages_per_address_minute"], rest["trusted_proxies"]) == (70, "10.0.0.0/8")
