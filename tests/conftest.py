"""Shared fixtures: a fake embedder with tiny vectors, a tiny corpus and indexes in tmp_path."""

from __future__ import annotations

import hashlib
import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from index.lexical import stems, words
from index.settings import Settings

CORPUS_DIR = Path(__file__).resolve().parent.parent / "knowledge"


class FakeEmbedder:
    """Deterministic bag-of-stems vectors (32 dims): texts sharing words are similar."""

    name = "fake-embedder"
    dimension = 32

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for term in stems(words(text)):
            h = int(hashlib.md5(term.encode()).hexdigest(), 16)
            v[h % self.dimension] += 1.0 if (h >> 8) % 2 else -1.0
        n = np.linalg.norm(v)
        if n == 0:
            v[0] = 1.0
            return v
        return v / n

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._one(t) for t in texts])

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return np.stack([self._one(t) for t in texts])


TINY_DOCS = {
    "iop.md": """
        # Idéburet offentligt partnerskap

        Ett idéburet offentligt partnerskap (IOP) är en samverkansform mellan offentlig sektor och
        idéburna organisationer. Parterna bidrar båda med resurser och tar gemensamt ansvar.

        IOP används när en samhällsutmaning inte kan lösas genom en vanlig upphandling, och
        överenskommelsen saknar sanktioner.

        ## Avtalet

        Överenskommelsen beskriver bakgrund, vision, avtalstid och hur parterna kliver ur samarbetet.
        """,
    "troskel.txt": """
        DIREKTUPPHANDLING

        Om en upphandling berör ett belopp under 586 907 kr är det möjligt att göra en så kallad
        direktupphandling utan krav på annonsering.

        Ett ramavtal är ett avtal mellan en upphandlande myndighet och en eller flera leverantörer
        för att fastställa villkoren för senare tilldelning av kontrakt under en given tidsperiod.
        """,
    "reserverat.md": """
        # Reserverade kontrakt

        En upphandlande myndighet får reservera rätten att delta i en upphandling för sociala
        företag vars huvudsakliga syfte är social och yrkesmässig integration av personer med
        funktionsnedsättning eller som har svårt att komma in på arbetsmarknaden.
        """,
}

TINY_MANIFEST = """
[[documents]]
id = "iop"
file = "iop.md"
title = "Handbok om IOP"
publisher = "Testförlaget"
year = 2024

[[documents]]
id = "troskel"
file = "troskel.txt"
title = "Trösklar och ramavtal"
year = 2019
"""


@pytest.fixture
def tiny_knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    for name, text in TINY_DOCS.items():
        (folder / name).write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    (folder / "manifest.toml").write_text(TINY_MANIFEST, encoding="utf-8")
    return folder


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def tiny_settings(tmp_path: Path, tiny_knowledge: Path) -> Settings:
    return Settings(
        knowledge_dir=tiny_knowledge, index_dir=tmp_path / "index", model="fake-embedder",
        model_cache_dir=tmp_path / "models",
    )


@pytest.fixture
def tiny_index(tiny_settings: Settings, fake_embedder: FakeEmbedder) -> Settings:
    from index.store import build_index

    build_index(tiny_settings.knowledge_dir, tiny_settings.index_dir, fake_embedder)
    return tiny_settings


@pytest.fixture
def tiny_engine(tiny_index: Settings, fake_embedder: FakeEmbedder):
    from index.search import SearchEngine

    return SearchEngine.load(tiny_index, fake_embedder)


# == The running assistant, for end-to-end tests (slow) ======================================
RASA_MODEL = Path(__file__).resolve().parent.parent / "var" / "rasa" / "models" / "bot.tar.gz"

SLACK_SECRET = "test-signing-secret"


class JsonHandler(BaseHTTPRequestHandler):
    """Request handler of the fake external services: JSON replies, no access log."""

    def reply_json(self, payload, status: int = 200) -> None:
        out = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def log_message(self, *args):
        pass


def serve(handler: type[JsonHandler]) -> tuple[ThreadingHTTPServer, str]:
    """Start ``handler`` on a free local port in a daemon thread; returns the server and its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class FakeSlackAPI:
    """A local stand-in for Slack's Web API: records chat.postMessage calls, answers ok."""

    def __init__(self):
        posts = self.posts = []

        class Handler(JsonHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.read_body()
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    from urllib.parse import parse_qsl

                    payload = dict(parse_qsl(body.decode()))
                posts.append({"path": self.path, "auth": self.headers.get("Authorization"), "payload": payload})
                self.reply_json({"ok": True, "channel": payload.get("channel"), "ts": "1.0"})

        self.server, base = serve(Handler)
        self.url = base + "/api/"


@pytest.fixture(scope="session")
def fake_slack():
    api = FakeSlackAPI()
    yield api
    api.server.shutdown()


TEAMS_APP_ID = "00000000-1111-2222-3333-444444444444"
TEAMS_TENANT = "contoso-tenant-id"
TEAMS_ISSUER = "https://api.botframework.com"


class FakeMicrosoft:
    """Local stand-ins for the Microsoft identity platform (token endpoint), the Bot Framework
    OpenID configuration and signing keys, and the Bot Framework connector (where replies go)."""

    def __init__(self):
        from urllib.parse import parse_qsl

        from cryptography.hazmat.primitives.asymmetric import rsa
        from jwt.algorithms import RSAAlgorithm

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.token_requests, self.activities = [], []
        self.issuer = TEAMS_ISSUER  # what the OpenID configuration says (None: no issuer in it)
        self.key_fetches = 0
        fake = self

        class Handler(JsonHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/openid":
                    config = {"jwks_uri": fake.url + "/keys"}
                    if fake.issuer is not None:
                        config["issuer"] = fake.issuer
                    self.reply_json(config)
                elif self.path == "/keys":
                    fake.key_fetches += 1
                    self.reply_json({"keys": [jwk]})
                else:
                    self.reply_json({}, 404)

            def do_POST(self):  # noqa: N802
                body = self.read_body().decode()
                if self.path.endswith("/oauth2/v2.0/token"):
                    fake.token_requests.append({"path": self.path, "form": dict(parse_qsl(body))})
                    self.reply_json({"token_type": "Bearer", "expires_in": 3600, "access_token": "fake-access-token"})
                elif "/v3/conversations/" in self.path:
                    fake.activities.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                            "activity": json.loads(body)})
                    self.reply_json({"id": "reply-1"})
                else:
                    self.reply_json({}, 404)

        self.server, self.url = serve(Handler)

    def token(self, key=None, kid="test-key", **claims) -> str:
        import time

        import jwt

        payload = {"iss": TEAMS_ISSUER, "aud": TEAMS_APP_ID, "exp": int(time.time()) + 600,
                   "nbf": int(time.time()) - 10, "serviceurl": self.url, **claims}
        payload = {k: v for k, v in payload.items() if v is not None}  # a claim given as None is left out
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="session")
def fake_microsoft():
    fake = FakeMicrosoft()
    yield fake
    fake.server.shutdown()


STAFF_TOKEN = "staff-test-token"
REST_TOKEN = "rest-test-token-0123456789abcdef"
WEBCHAT_SECRET = "webchat-test-secret-0123456789abcdef"


def rest_headers() -> dict:
    return {"Authorization": f"Bearer {REST_TOKEN}"}


def custom_of(messages: list[dict]) -> dict | None:
    """The one answer payload among a turn's Rasa messages (None when the turn has none)."""
    customs = [m["custom"] for m in messages if isinstance(m.get("custom"), dict)]
    assert len(customs) <= 1
    return customs[0] if customs else None


def rasa_api_headers(stack, conversation_id: str, role: str = "user") -> dict:
    """Authorization for Rasa's HTTP API as the inbox sends it: a short-lived JWT for one conversation."""
    from service.rasa_api import rasa_api_jwt

    return {"Authorization": f"Bearer {rasa_api_jwt(stack.settings.rasa_api_token.get_secret_value(), conversation_id, role)}"}


def web_sender(token: str) -> str:
    """The conversation id of a web chat session token ("<id>.<expires>.<signature>")."""
    return "web:" + token.split(".")[0]


def free_ports(n: int) -> list[int]:
    """Ports nobody listens on now (so parallel runs, or a running `make run`, do not collide)."""
    import socket

    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory, fake_slack, fake_microsoft):
    """All three servers (knowledge service, action server, Rasa) with Slack, Teams and web chat
    channels pointed at local fakes; started once per test session (about a minute)."""
    if not RASA_MODEL.exists():
        pytest.fail(f"no trained model at {RASA_MODEL}: run `make train`")
    from service.stack import Stack, StackSettings

    var = tmp_path_factory.mktemp("stack")
    port, actions_port, rasa_port = free_ports(3)
    settings = StackSettings(
        port=port, actions_port=actions_port, rasa_port=rasa_port, tracker_db=str(var / "tracker.db"),
        inbox_db=var / "inbox.sqlite3", log_dir=var / "log", start_timeout=400,
        slack_bot_token="xoxb-test-token", slack_signing_secret=SLACK_SECRET, slack_api_base_url=fake_slack.url,
        teams_app_id=TEAMS_APP_ID, teams_app_password="teams-client-secret", teams_tenant_id=TEAMS_TENANT,
        teams_login_url=fake_microsoft.url, teams_openid_configuration_url=fake_microsoft.url + "/openid",
        teams_service_url_hosts="127.0.0.1",  # the fake connector (plain http: allowed on loopback only)
        webchat_socket_url=f"http://127.0.0.1:{rasa_port}", inbox_token=STAFF_TOKEN,
        rest_token=REST_TOKEN, webchat_secret=WEBCHAT_SECRET,
        # Every test client here is 127.0.0.1: the per-address limits would add up all the tests' sessions
        # and messages (they have their own tests: test_addresses.py).
        messages_per_address_minute=0, rest_messages_per_address_minute=0, webchat_sessions_per_address_hour=0,
    )
    s = Stack(settings)
    s.start()
    yield s
    s.stop()




# == Real PostgreSQL and Redis (Debian's packages), one of each per test session ==================
@pytest.fixture(scope="session")
def infra_dir():
    """A folder the servers keep their data in. Not pytest's tmp_path: as root, PostgreSQL runs as the
    postgres user, who cannot enter pytest's private (0700) temporary folders."""
    import os
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="assistant-infra-"))
    os.chmod(folder, 0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _start_server(server, folder: Path, timeout: float = 60.0):
    import time

    process = server.process()
    process.start(folder / "log")
    deadline = time.monotonic() + timeout
    while not process.ready():
        if not process.alive() or time.monotonic() > deadline:
            process.stop()
            pytest.fail(f"{process.name} did not start:\n{process.tail()}")
        time.sleep(0.2)
    return process


@pytest.fixture(scope="session")
def postgres_server(infra_dir):
    """A real PostgreSQL (initdb in a temporary folder, a free port, password authentication)."""
    from service.servers import LocalPostgres

    server = LocalPostgres(infra_dir / "postgres", free_ports(1)[0])
    process = _start_server(server, infra_dir)
    yield server
    process.stop()


@pytest.fixture(scope="session")
def redis_server(infra_dir):
    """A real Redis (a free port, requirepass)."""
    from service.servers import LocalRedis

    server = LocalRedis(infra_dir / "redis", free_ports(1)[0])
    process = _start_server(server, infra_dir)
    yield server
    process.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def inbox_db(request, tmp_path):
    """Where an inbox test keeps its data: a SQLite file, and (slow) a fresh database on a real PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path / "inbox.sqlite3"
    server = request.getfixturevalue("postgres_server")
    name = "inbox_" + hashlib.md5(request.node.nodeid.encode()).hexdigest()[:12]
    return server.create_database(name)


def pytest_collection_modifyitems(config, items):
    """Files with slow tests run first, each file's tests in their own order. `make test` runs two
    pytest-xdist processes that take whole files (`--dist loadfile --no-loadscope-reorder`): the long
    files (the NLU's training, the fast loader's check, the servers) start early and the many short
    unit-test files fill the end. xdist's own order (most tests first) started the fast loader's
    one-test file of about three minutes last, with the other process idle (session 24)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # a stable sort
