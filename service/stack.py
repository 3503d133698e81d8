"""Run the whole assistant: knowledge service, Rasa action server and Rasa (its channels).

``python -m service.stack`` (what ``make run`` calls once everything is installed, the index built
and the Rasa model trained) starts the three processes, waits until each answers its health check,
prints where each runs, then supervises them: a process that stops is logged (exit code or signal,
the end of its log) and restarted with backoff (service/supervisor.py) while the others keep
serving. Only Ctrl-C or SIGTERM stops the launcher, and with it all three. Logs go to var/log/.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import httpx
import yaml
from pydantic import Field, SecretStr

from assistant.guard import is_loopback, new_secret
from index.settings import PROJECT_ROOT, ProjectPath, project_path

from .rasa_stores import describe_url, store_env
from .settings import ServiceSettings
from .supervisor import Backoff, Supervisor


class StackSettings(ServiceSettings):
    actions_host: str = Field("127.0.0.1", description="Address the Rasa action server listens on")
    actions_port: int = Field(5055, ge=1, le=65535, description="Port of the Rasa action server")
    rasa_host: str = Field("127.0.0.1", description="Address Rasa listens on (REST channel)")
    rasa_port: int = Field(5005, ge=1, le=65535, description="Port of Rasa")
    rasa_venv: ProjectPath = Field(PROJECT_ROOT / ".venv-rasa", description="Virtual environment holding Rasa 3.6")
    rasa_model: ProjectPath = Field(PROJECT_ROOT / "var" / "rasa" / "models" / "bot.tar.gz", description="Trained model")
    tracker_dialect: str = Field("sqlite", description="SQL dialect of Rasa's tracker store")
    tracker_db: str = Field(str(PROJECT_ROOT / "var" / "rasa" / "tracker.db"),
                            description="Tracker store database (a file path for sqlite)")
    tracker_url: SecretStr | None = Field(None, description="Rasa's tracker store as a SQLAlchemy URL "
                                          "(postgresql://user:password@host:port/db); overrides TRACKER_DIALECT/DB")
    log_dir: ProjectPath = Field(PROJECT_ROOT / "var" / "log", description="Where the processes write their logs")
    start_timeout: float = Field(300.0, description="Seconds to wait for each process to become ready")
    restart_delay: float = Field(1.0, gt=0, le=300, description="Seconds before restarting a crashed process; "
                                 "doubles with each crash in a row")
    restart_delay_max: float = Field(30.0, gt=0, le=3600, description="Longest wait before a restart")
    restart_reset_after: float = Field(60.0, ge=0, le=86_400, description="A process up this many seconds counts "
                                       "as healthy: its next crash is restarted after restart_delay again")
    restart_hung_after: float = Field(60.0, ge=0, le=3600, description="A process that was ready and then answers "
                                      "no HTTP request for this many seconds is killed and restarted (0 = never)")
    slack_bot_token: SecretStr | None = Field(None, description="Slack bot token (xoxb-…); enables the Slack channel")
    slack_signing_secret: SecretStr | None = Field(None, description="Slack app signing secret")
    slack_api_base_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (GovSlack, tests)")
    teams_app_id: str | None = Field(None, description="Azure bot (Microsoft App) id; enables the Teams channel")
    teams_app_password: SecretStr | None = Field(None, description="Azure bot client secret")
    teams_tenant_id: str = Field("botframework.com", description="Tenant id of a single-tenant bot "
                                 "('botframework.com' = multi-tenant)")
    teams_login_url: str = Field("https://login.microsoftonline.com", description="Microsoft identity platform host")
    rest_token: SecretStr | None = Field(None, description="Bearer token the REST channel requires; unset = REST "
                                         "answers only this machine while Rasa listens on a loopback address")
    webchat_allowed_origins: str | None = Field(None, description="Comma-separated browser origins that may open "
                                                "the web chat socket; unset = the page's own origin "
                                                "(http://ASSISTANT_HOST:ASSISTANT_PORT, and localhost for 127.0.0.1)")
    max_message_chars: int = Field(2000, ge=1, le=100_000, description="Longest message any channel passes to Rasa")
    max_metadata_bytes: int = Field(4096, ge=0, description="Message metadata larger than this (JSON) is dropped")
    messages_per_minute: int = Field(20, ge=0, le=10_000, description="Chat messages one sender (conversation) may "
                                     "send per minute, in every channel; over it the user is asked to wait (0 = off)")
    messages_per_address_minute: int = Field(60, ge=0, le=100_000, description="Web chat messages one client "
                                             "address may send per minute over all its sessions (0 = off)")
    rest_messages_per_address_minute: int = Field(600, ge=0, le=100_000, description="REST messages one client "
                                                  "address may send per minute over all its senders (a server "
                                                  "relays many users; 0 = off)")
    webchat_sessions_per_address_hour: int = Field(60, ge=0, le=100_000, description="New web chat sessions one "
                                                   "client address may start per hour (0 = off)")
    max_expected_wait_seconds: float = Field(1.5, ge=0, le=600, description="Admission control: a chat message "
                                             "that would wait longer than this behind the messages in progress "
                                             "(their number × the recent time between two completions) is told at "
                                             "once that many are asking, REST gets 503 + Retry-After (0 = off)")
    max_messages_in_flight: int = Field(48, ge=0, le=10_000, description="Chat messages one Rasa process handles "
                                        "at once at most (all channels), whatever the expected wait; past it the "
                                        "same reply (0 = no cap)")
    action_timeout: float = Field(30.0, gt=0, le=300, description="Seconds Rasa waits for the action server; then "
                                  "the user gets the fallback message (Rasa's own default: 300)")
    background_tuning: bool = Field(True, description="When the index was built without its query tuning "
                                    "(index build --defer-tuning, as make run does), tune it in the background "
                                    "once the stack is ready; the processes take the tuned index in without a restart")
    rasa_fast_load: bool = Field(True, description="Load Rasa's TensorFlow models without the one-example "
                                 "training step Rasa 3.6 runs at every start (bot/fastload.py; same predictions, "
                                 "start ≈ 4× faster)")
    teams_openid_configuration_url: str = Field(
        "https://login.botframework.com/v1/.well-known/openidconfiguration",
        description="Where the Bot Framework publishes the keys that sign incoming requests")
    teams_issuer: str = Field("https://api.botframework.com", min_length=1, description="The issuer Teams tokens "
                              "and the OpenID configuration must name (anything else is refused)")
    teams_service_url_hosts: str = Field("smba.trafficmanager.net,*.botframework.com", min_length=1,
                                         description="Comma-separated hosts a Teams activity's serviceUrl (where "
                                         "replies and the bot's token go) may name; *.example.com = subdomains")


@lru_cache(maxsize=1)
def get_stack_settings() -> StackSettings:
    return StackSettings()


@dataclass
class Process:
    name: str
    command: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self.name}.log"
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.popen = subprocess.Popen(self.command, cwd=PROJECT_ROOT, env={**os.environ, **self.env}, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def exit_code(self) -> int | None:
        """Popen.returncode: None while running (or never started), −N when killed by signal N."""
        return None if self.popen is None else self.popen.poll()

    def ready(self) -> bool:
        try:
            return httpx.get(self.health_url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def responds(self) -> bool:
        """Answers HTTP at all (any status: a 503 'not ready' is alive); False when refused or silent."""
        try:
            httpx.get(self.health_url, timeout=5.0)
            return True
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL to the process group (a hung process); the supervisor then restarts it."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 15 s; also reaps what a crashed leader left behind."""
        if self.popen is None:
            return
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:  # the group outlives its leader when the leader was killed and had children of its own
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait()

    def tail(self, lines: int = 25) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def rasa_env(s: StackSettings) -> dict[str, str]:
    """The variables bot/endpoints.yml reads."""
    db = s.tracker_db
    if s.tracker_dialect == "sqlite":
        path = project_path(Path(db))
        path.parent.mkdir(parents=True, exist_ok=True)
        db = str(path)
    return {
        "ASSISTANT_ACTION_ENDPOINT": f"http://{s.actions_host}:{s.actions_port}/webhook",
        "ASSISTANT_TRACKER_DIALECT": s.tracker_dialect,
        "ASSISTANT_TRACKER_DB": db,
        **store_env(s.tracker_url, s.redis_url),  # tracker URL and lock store (bot/endpoints.yml)
        "RASA_TELEMETRY_ENABLED": "false",
        "SANIC_REQUEST_MAX_SIZE": str(s.max_body_bytes),  # Sanic refuses larger bodies (413) before any handler
    }


def settings_env(s: StackSettings) -> dict[str, str]:
    """This process's settings as ASSISTANT_* variables, so the children see the same configuration."""
    env = {}
    for name in type(s).model_fields:
        value = getattr(s, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            env[f"ASSISTANT_{name.upper()}"] = str(value)
    return env


def webchat_origins(s: StackSettings) -> list[str]:
    """Who may open the web chat's socket: the configured origins, else the page's own origin."""
    if s.webchat_allowed_origins:
        return [o.strip().rstrip("/") for o in s.webchat_allowed_origins.split(",") if o.strip()]
    origins = [f"http://{s.host}:{s.port}"]
    if s.host in ("127.0.0.1", "localhost"):
        origins += [f"http://{h}:{s.port}" for h in ("127.0.0.1", "localhost") if h != s.host]
    return origins


def write_credentials(s: StackSettings) -> Path:
    """Rasa's channel configuration: REST and web chat always, Slack and Teams when their credentials are set.

    Secrets stay in the environment: the file refers to them as ${VARIABLE}, which Rasa expands.
    """
    limits = {"max_message_chars": s.max_message_chars, "max_metadata_bytes": s.max_metadata_bytes,
              "messages_per_minute": s.messages_per_minute}
    if s.redis_url:  # several replicas: the rate limits are counted in Redis, for all of them together
        limits["redis_url"] = "${ASSISTANT_REDIS_URL}"
    # Web chat and REST also count per client address (Slack's and Teams' requests come from their
    # platforms' servers, whose signatures name the user: per sender is the limit there).
    rest: dict = {**limits, "messages_per_address_minute": s.rest_messages_per_address_minute,
                  "trusted_proxies": s.trusted_proxies,
                  "allow_loopback_without_token": s.rest_token is None and is_loopback(s.rasa_host)}
    if s.rest_token is not None:
        rest["token"] = "${ASSISTANT_REST_TOKEN}"
    channels: dict = {
        "bot.connectors.health.HealthInput": {},  # GET /health/live, /health/ready
        # POST /webhooks/staff_reply/deliver: staff replies to Slack and Teams users (secret: ASSISTANT_RASA_API_TOKEN)
        "bot.connectors.staff_reply.StaffReplyInput": {},
        "bot.connectors.rest.GuardedRestInput": rest,
        "bot.connectors.webchat.WebChatInput": {"user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered",
                                                "cors_allowed_origins": ",".join(webchat_origins(s)),
                                                "session_secret": "${ASSISTANT_WEBCHAT_SECRET}",
                                                "session_days": s.webchat_session_days,
                                                "max_body_bytes": s.max_body_bytes, **limits,
                                                "messages_per_address_minute": s.messages_per_address_minute,
                                                "sessions_per_address_hour": s.webchat_sessions_per_address_hour,
                                                "trusted_proxies": s.trusted_proxies},
    }
    # With redis_url (in limits) the web chat's socket.io server also passes messages through Redis: an
    # answer reaches the socket whichever replica holds it.
    if s.slack_bot_token and s.slack_signing_secret:
        channels["bot.connectors.slack.CitingSlackInput"] = {
            "slack_token": "${ASSISTANT_SLACK_BOT_TOKEN}",
            "slack_signing_secret": "${ASSISTANT_SLACK_SIGNING_SECRET}",
            "api_base_url": s.slack_api_base_url, **limits,
        }
    if s.teams_app_id and s.teams_app_password:
        channels["bot.connectors.teams.TeamsInput"] = {
            "app_id": s.teams_app_id,
            "app_password": "${ASSISTANT_TEAMS_APP_PASSWORD}",
            "tenant_id": s.teams_tenant_id,
            "login_url": s.teams_login_url,
            "openid_configuration_url": s.teams_openid_configuration_url, "issuer": s.teams_issuer,
            "service_url_hosts": s.teams_service_url_hosts, **limits,
        }
    path = s.log_dir.parent / "rasa" / f"credentials-{s.rasa_port}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by python -m service.stack from the ASSISTANT_* settings; do not edit.\n"
                    + yaml.safe_dump(channels, sort_keys=False), encoding="utf-8")
    return path


def processes(s: StackSettings) -> list[Process]:
    python = sys.executable
    rasa_python = s.rasa_venv / "bin" / "python"
    env = settings_env(s)
    credentials = write_credentials(s)
    return [
        Process("knowledge-service", [python, "-m", "service"], f"http://{s.host}:{s.port}/health/ready", env),
        Process("action-server", [python, "-m", "actions"], f"http://{s.actions_host}:{s.actions_port}/health/ready",
                env),
        # bot.launch hands Rasa its API secret (ASSISTANT_RASA_API_TOKEN, from the environment) as a JWT
        # secret inside the process: nothing secret on the command line, which every local user can read.
        Process("rasa", [
            str(rasa_python), "-m", "bot.launch", "run", "--model", str(s.rasa_model), "--endpoints",
            "bot/endpoints.yml", "--credentials", str(credentials), "--interface", s.rasa_host,
            "--port", str(s.rasa_port), "--enable-api",
        ], f"http://{s.rasa_host}:{s.rasa_port}/health/ready", {**env, **rasa_env(s), "PYTHONPATH": str(PROJECT_ROOT)}),
    ]


class Stack:
    def __init__(self, settings: StackSettings | None = None):
        settings = settings or get_stack_settings()
        # The web service reads transcripts from Rasa's HTTP API, which needs a token: one per run
        # unless configured. Likewise the secret that signs web chat sessions (Rasa issues them, the
        # web service checks them), and the REST token when Rasa listens beyond this machine. They
        # reach the children through their environment, never argv or a file.
        self.settings = settings.model_copy(update={
            "rasa_url": f"http://{settings.rasa_host}:{settings.rasa_port}",
            "rasa_api_token": settings.rasa_api_token or SecretStr(secrets.token_urlsafe(32)),
            "webchat_secret": settings.webchat_secret or SecretStr(new_secret()),
            "rest_token": settings.rest_token or (None if is_loopback(settings.rasa_host)
                                                  else SecretStr(secrets.token_urlsafe(32))),
        })
        self.processes = processes(self.settings)

    def check(self) -> None:
        s = self.settings
        if not (s.rasa_venv / "bin" / "rasa").exists():
            raise SystemExit(f"Rasa is not installed in {s.rasa_venv}: run `make rasa-env` (or `make run`).")
        if not s.rasa_model.exists():
            raise SystemExit(f"No trained Rasa model at {s.rasa_model}: run `make train` (or `make run`).")

    def ports_in_use(self) -> list[str]:
        import socket

        s = self.settings
        busy = []
        for name, host, port in (("knowledge service", s.host, s.port), ("action server", s.actions_host, s.actions_port),
                                 ("Rasa", s.rasa_host, s.rasa_port)):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, port))
                except OSError:
                    busy.append(f"{host}:{port} ({name})")
        return busy

    def start(self) -> None:
        self.check()
        busy = self.ports_in_use()
        if busy:
            raise RuntimeError("already in use: " + ", ".join(busy) + ". Is another `make run` still running? "
                               "Stop it, or choose other ports (ASSISTANT_PORT, ASSISTANT_ACTIONS_PORT, ASSISTANT_RASA_PORT).")
        for p in self.processes:
            p.start(self.settings.log_dir)
        started = time.monotonic()
        deadline = started + self.settings.start_timeout
        pending = list(self.processes)
        while pending:
            for p in list(pending):
                if not p.alive():
                    self.stop()
                    raise RuntimeError(f"{p.name} stopped while starting; last lines of {p.log_path}:\n{p.tail()}")
                if p.ready():
                    pending.remove(p)
                    print(f"  {p.name} ready after {time.monotonic() - started:.0f} s", flush=True)
            if pending and time.monotonic() > deadline:
                self.stop()
                names = ", ".join(p.name for p in pending)
                raise RuntimeError(f"not ready after {self.settings.start_timeout:.0f} s: {names} (logs in "
                                   f"{self.settings.log_dir})")
            time.sleep(0.5)

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()

    def describe(self) -> str:
        from assistant.inbox import describe_database

        s = self.settings
        return "\n".join([
            f"Web chat:           http://{s.host}:{s.port}/   (embed: <script src=\"http://{s.host}:{s.port}/embed.js\" "
            "defer></script>)",
            f"Chat (Rasa REST):   POST http://{s.rasa_host}:{s.rasa_port}/webhooks/rest/webhook "
            '{"sender": "me", "message": "Vad är IOP?"}'
            + ("   (Authorization: Bearer $ASSISTANT_REST_TOKEN)" if s.rest_token else "   (from this machine only)"),
            f"Search API:         http://{s.host}:{s.port}/api/search   (schema: http://{s.host}:{s.port}/openapi.json)",
            f"Action server:      http://{s.actions_host}:{s.actions_port}/webhook",
            f"Conversations:      " + (describe_url(s.tracker_url) if s.tracker_url
                                          else f"{s.tracker_dialect} {s.tracker_db}"),
            f"Staff inbox:        http://{s.host}:{s.port}/inbox   "
            + ("(log in with ASSISTANT_INBOX_TOKEN)" if s.inbox_token else "(off: set ASSISTANT_INBOX_TOKEN)"),
            f"Staff inbox data:   {describe_database(s.inbox_db)}",
            *([f"Slack events:       POST http://{s.rasa_host}:{s.rasa_port}/webhooks/slack/webhook"]
              if s.slack_bot_token and s.slack_signing_secret else []),
            *([f"Teams messaging:    POST http://{s.rasa_host}:{s.rasa_port}/webhooks/botframework/webhook "
               f"(tenant {s.teams_tenant_id})"] if s.teams_app_id and s.teams_app_password else []),
            f"Logs:               {s.log_dir}/",
        ])


def tuning_wanted(s: StackSettings) -> bool:
    """Whether the index was built without the query tuning its settings ask for (``index build
    --defer-tuning``, as a first ``make run`` builds it): the launcher then tunes it in the background."""
    from index.store import read_manifest

    try:
        manifest = read_manifest(s.index_dir)
    except Exception:  # noqa: BLE001 - no readable index: the processes report that themselves
        return False
    return manifest.query_tuning is None and bool(manifest.question_count) and s.tuning() is not None


class BackgroundTuning:
    """``python -m index build --if-needed`` at the lowest CPU priority beside the running stack: it tunes
    the query encoder and renames the tuned index into place, where the knowledge service and the action
    server pick it up (index/watch.py). One attempt; its output goes to index-tuning.log."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_path = log_dir / "index-tuning.log"
        self.env = env
        self.command = [sys.executable, "-m", "index", "build", "--if-needed", "--quiet"]
        self.popen: subprocess.Popen | None = None
        self.started = 0.0
        self.reported = False

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command, cwd=PROJECT_ROOT, env={**os.environ, **self.env},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=lambda: os.nice(19))
        self.started = time.monotonic()

    def poll(self) -> str | None:
        """A line to print once it has ended (None while it runs, and after it was reported)."""
        if self.popen is None or self.reported or self.popen.poll() is None:
            return None
        self.reported = True
        took = time.monotonic() - self.started
        if self.popen.returncode == 0:
            return f"Query tuning done in {took:.0f} s; the search now uses the tuned index."
        return (f"Query tuning failed (exit {self.popen.returncode}) after {took:.0f} s; the search goes on with "
                f"the index as it is. See {self.log_path}; `make index` tries again.")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


def backoff(s: StackSettings) -> Backoff:
    return Backoff(initial=min(s.restart_delay, s.restart_delay_max), cap=s.restart_delay_max,
                   reset_after=s.restart_reset_after)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not every health check
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops the stack as Ctrl-C does
    stack = Stack()
    tuning = BackgroundTuning(stack.settings.log_dir, settings_env(stack.settings))
    started = time.perf_counter()
    print("Starting the knowledge service, the action server and Rasa …", flush=True)
    try:
        try:
            stack.start()
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"Ready in {time.perf_counter() - started:.0f} s.\n{stack.describe()}\nA process that stops is "
              "restarted (its log says why it stopped); Ctrl-C stops everything.", flush=True)
        if stack.settings.background_tuning and tuning_wanted(stack.settings):
            tuning.start()
            print(f"Tuning the query encoder in the background (about 10 minutes on 2 cores; {tuning.log_path}). "
                  "Until then questions go through the stock encoder: answers work, the right paragraph is "
                  "cited first a little less often.", flush=True)
        supervisor = Supervisor(stack.processes, stack.settings.log_dir, backoff(stack.settings),
                                hung_after=stack.settings.restart_hung_after)
        while True:
            supervisor.tick()
            done = tuning.poll()
            if done:
                print(done, flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("Stopping …", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean stop short
        tuning.stop()
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
