"""The assistant on several processes, as it runs past one machine: ``make cluster``
(``python -m service.cluster``).

One command starts, as local processes with their data in var/cluster/:

- PostgreSQL (initdb on first start, 127.0.0.1 only, password from var/cluster/postgres/password, 0600):
  database ``rasa`` holds Rasa's conversations (tracker store), ``inbox`` the staff inbox;
- Redis (``requirepass`` from var/cluster/redis/password, 0600): Rasa's lock store, and the web chat's
  socket.io messages between replicas;
- N Rasa replicas (``ASSISTANT_CLUSTER_REPLICAS``, default 2) and N action servers
  (``ASSISTANT_CLUSTER_ACTION_SERVERS``, default = replicas; replica i uses action server i mod N);
- the knowledge service (search API, web chat page, staff inbox) on ``ASSISTANT_PORT``;
- HAProxy in front of the Rasa replicas on ``ASSISTANT_RASA_HOST:ASSISTANT_RASA_PORT`` (the address
  ``make run`` gives Rasa, so every client works unchanged), with health checks on each replica.

Balancing: REST, Slack, Teams and Rasa's HTTP API go to the replica with the fewest open requests;
any replica can take any turn of any conversation, since the conversations live in PostgreSQL and the
Redis lock store makes the turns of one conversation run one at a time, in order. The web chat's
socket.io traffic (``/socket.io/``) is sticky by **source address** (``balance source``, consistent
hashing): the page uses long-polling, and an engine.io session lives in the process that opened it.
A cookie would work only for browsers that send it; the page's socket is a cross-origin XHR without
credentials, often inside an iframe where third-party cookies are blocked, so a cookie would not
arrive, while the address always does. The cost: users behind one NAT share a replica, and when a
replica goes down only its users move (consistent hashing) and reconnect.

Managed services instead of the local ones: set ``ASSISTANT_TRACKER_URL`` (and ``ASSISTANT_INBOX_DB`` as
a postgresql:// URL) and ``ASSISTANT_REDIS_URL``; the cluster then starts no PostgreSQL or Redis.

Passwords reach the processes by environment only; nothing secret is on a command line or printed.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr

from assistant.guard import is_loopback
from index.settings import PROJECT_ROOT, ProjectPath

from .rasa_stores import describe_url
from .servers import LocalPostgres, LocalRedis, ServerProcess, free_port
from .stack import Process, StackSettings, processes


class ClusterSettings(StackSettings):
    cluster_replicas: int = Field(2, ge=1, le=16, description="Rasa replicas behind the balancer")
    cluster_action_servers: int | None = Field(None, ge=1, le=16, description="Action servers (default: one per "
                                               "Rasa replica)")
    cluster_dir: ProjectPath = Field(PROJECT_ROOT / "var" / "cluster", description="Data, configuration, "
                                     "passwords (0600) and logs of python -m service.cluster")
    cluster_postgres_port: int = Field(0, ge=0, le=65535, description="Port of the local PostgreSQL (0: a free one)")
    cluster_redis_port: int = Field(0, ge=0, le=65535, description="Port of the local Redis (0: a free one)")
    cluster_knowledge: bool = Field(True, description="Also start the knowledge service (search, web chat page, "
                                    "inbox)")
    cluster_pg_bin: Path | None = Field(None, description="PostgreSQL's binaries (default: the newest "
                                        "/usr/lib/postgresql/*/bin)")


@lru_cache(maxsize=1)
def get_cluster_settings() -> ClusterSettings:
    return ClusterSettings()


def haproxy_config(bind_host: str, bind_port: int, replicas: list[tuple[str, str, int]], stats_port: int) -> str:
    """HAProxy in front of the Rasa replicas (name, host, port): see the module docstring for the choices.
    Its state (which replicas are in rotation) is at http://127.0.0.1:<stats_port>/stats;csv."""
    servers = "\n".join(f"    server {name} {host}:{port} check" for name, host, port in replicas)
    checks = ("    option httpchk GET /webhooks/rest/\n"
              "    http-check expect status 200\n"
              # A connection refused marks the replica down at once (observe layer4): health checks take
              # 4 s to notice a kill -9, and leastconn prefers the dead replica (it holds no connections),
              # so both retries went to it and the request got 502.
              "    default-server inter 2s fall 2 rise 2 maxconn 200 observe layer4 error-limit 1 on-error mark-down\n")
    return f"""# Written by python -m service.cluster; do not edit.
global
    maxconn 4096
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 5s
    # long-polling holds a request up to socket.io's ping interval; a chat turn waits for the action server
    timeout client 120s
    timeout server 120s
    timeout http-request 15s
    timeout queue 30s
    # A replica that dies (kill -9) refuses new connections, or closes the ones it holds without an
    # answer: such a request is sent again, to another replica (redispatch), which continues the
    # conversation from PostgreSQL once the dead replica's lock ticket lapses (bot/lock_store.py). A slow
    # answer is never sent twice (no retry on timeouts).
    retries 2
    retry-on conn-failure empty-response
    option redispatch 1
    # L7 retries resend the request from HAProxy's copy: keep the whole (small, capped) body first
    option http-buffer-request

listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
    stats refresh 5s

frontend chat
    bind {bind_host}:{bind_port}
    monitor-uri /balancer/health
    acl webchat path_beg /socket.io
    use_backend rasa_webchat if webchat
    default_backend rasa

backend rasa
    balance leastconn
{checks}{servers}

backend rasa_webchat
    balance source
    hash-type consistent
{checks}{servers}
"""


class Cluster:
    """Start, watch and stop every process of the cluster (see the module docstring)."""

    def __init__(self, settings: ClusterSettings | None = None):
        settings = settings or get_cluster_settings()
        folder = settings.cluster_dir
        self.log_dir = folder / "log"
        self.infra: list[Process] = []
        self.postgres: LocalPostgres | None = None
        self.redis: LocalRedis | None = None
        update: dict = {"log_dir": self.log_dir}
        if settings.tracker_url is None:
            self.postgres = LocalPostgres(folder / "postgres", settings.cluster_postgres_port or free_port(),
                                          databases=("rasa", "inbox"), bin_dir=settings.cluster_pg_bin)
            update["tracker_url"] = SecretStr(self.postgres.url("rasa"))
            if not isinstance(settings.inbox_db, SecretStr):
                update["inbox_db"] = SecretStr(self.postgres.url("inbox"))
        if settings.redis_url is None:
            self.redis = LocalRedis(folder / "redis", settings.cluster_redis_port or free_port())
            update["redis_url"] = SecretStr(self.redis.url(0))
        if not is_loopback(settings.rasa_host) and settings.rest_token is None:
            # Behind the balancer every request comes from 127.0.0.1: "loopback only" cannot tell a local
            # caller from a remote one, so a public balancer needs the REST token (generated per run).
            import secrets

            update["rest_token"] = SecretStr(secrets.token_urlsafe(32))
        # Secrets shared by all replicas (the API token, the web chat secret), as make run generates them.
        self.settings = _with_run_secrets(settings.model_copy(update=update))
        s = self.settings
        self.balancer_url = f"http://{s.rasa_host}:{s.rasa_port}"
        self.apps: list[Process] = []
        n_actions = s.cluster_action_servers or s.cluster_replicas
        action_ports = [free_port() for _ in range(n_actions)]
        rasa_ports = [free_port() for _ in range(s.cluster_replicas)]
        self.replica_urls = [f"http://127.0.0.1:{p}" for p in rasa_ports]
        common = {"rasa_url": self.balancer_url, "webchat_socket_url": s.webchat_socket_url
                  if "webchat_socket_url" in s.model_fields_set else self.balancer_url}
        if s.cluster_knowledge:
            knowledge = processes(s.model_copy(update=common))[0]
            self.apps.append(knowledge)
        for i, port in enumerate(action_ports, 1):
            action = processes(s.model_copy(update={**common, "actions_port": port}))[1]
            action.name = f"action-server-{i}"
            self.apps.append(action)
        for i, port in enumerate(rasa_ports, 1):
            replica = s.model_copy(update={**common, "rasa_host": "127.0.0.1", "rasa_port": port,
                                           "actions_port": action_ports[(i - 1) % n_actions]})
            rasa = processes(replica)[2]
            rasa.name = f"rasa-{i}"
            self.apps.append(rasa)
        config = s.cluster_dir / "haproxy.cfg"
        config.parent.mkdir(parents=True, exist_ok=True)
        self.stats_url = f"http://127.0.0.1:{free_port()}/stats;csv"
        config.write_text(haproxy_config(s.rasa_host, s.rasa_port,
                                         [(f"rasa-{i}", "127.0.0.1", p) for i, p in enumerate(rasa_ports, 1)],
                                         int(self.stats_url.split(":")[2].split("/")[0])), encoding="utf-8")
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        # Ready when every replica is in rotation (HAProxy's own checks passed), not merely listening.
        self.balancer = ServerProcess("haproxy", [haproxy, "-W", "-db", "-f", str(config)],
                                      lambda: self.replicas_in_rotation() == {p.name for p in self.replicas()})
        if self.postgres:
            self.infra.append(self.postgres.process())
        if self.redis:
            self.infra.append(self.redis.process())

    @property
    def processes(self) -> list[Process]:
        return [*self.infra, *self.apps, self.balancer]

    def replicas_in_rotation(self) -> set[str]:
        """The Rasa replicas HAProxy sends REST requests to now (its health checks passed)."""
        import csv

        import httpx

        try:
            rows = csv.DictReader(httpx.get(self.stats_url, timeout=2).text.lstrip("# ").splitlines())
        except httpx.HTTPError:
            return set()
        names = {p.name for p in self.replicas()}
        return {r["svname"] for r in rows if r["pxname"] == "rasa" and r["svname"] in names and r["status"] == "UP"}

    def replicas(self) -> list[Process]:
        return [p for p in self.apps if p.name.startswith("rasa-")]

    def check(self) -> None:
        s = self.settings
        if not (s.rasa_venv / "bin" / "rasa").exists():
            raise RuntimeError(f"Rasa is not installed in {s.rasa_venv}: run `make rasa-env`.")
        if not s.rasa_model.exists():
            raise RuntimeError(f"No trained Rasa model at {s.rasa_model}: run `make train`.")
        if not Path(self.balancer.command[0]).exists():
            raise RuntimeError("HAProxy is not installed: run `make cluster-deps` (apt-get install haproxy redis-server)")

    def _wait(self, group: list[Process], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(group)
        while pending:
            for p in list(pending):
                if not p.alive():
                    raise RuntimeError(f"{p.name} stopped while starting; last lines of {p.log_path}:\n{p.tail()}")
                if p.ready():
                    pending.remove(p)
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f} s: {', '.join(p.name for p in pending)} "
                                   f"(logs in {self.log_dir})")
            time.sleep(0.5)

    def start(self) -> None:
        self.check()
        try:
            for p in self.infra:
                p.start(self.log_dir)
            self._wait(self.infra, 60)
            for p in self.apps:
                p.start(self.log_dir)
            self.balancer.start(self.log_dir)
            self._wait(self.apps, self.settings.start_timeout)
            # Then HAProxy: its checks take every replica into rotation within a few seconds (before the
            # replicas answered it held them down; servers it has not checked yet count as up).
            self._wait([self.balancer], 60)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # The balancer first, then the apps, the stores last (Rasa flushes to them while it stops).
        for p in [self.balancer, *reversed(self.apps), *reversed(self.infra)]:
            p.stop()

    def describe(self) -> str:
        from assistant.inbox import describe_database

        s = self.settings
        lines = [f"Chat (balancer):    {self.balancer_url}  REST: POST /webhooks/rest/webhook, web chat: /socket.io/"
                 + ("   (Authorization: Bearer $ASSISTANT_REST_TOKEN)" if s.rest_token else "   (from this machine only)"),
                 f"Rasa replicas:      {', '.join(self.replica_urls)}"]
        if s.cluster_knowledge:
            lines.append(f"Web chat, search:   http://{s.host}:{s.port}/")
        lines += [f"Conversations:      {describe_url(s.tracker_url)}",
                  f"Locks, web chat:    {describe_url(s.redis_url)}",
                  f"Staff inbox data:   {describe_database(s.inbox_db)}",
                  f"Passwords:          {s.cluster_dir}/postgres/password, {s.cluster_dir}/redis/password (0600)",
                  f"Logs:               {self.log_dir}/"]
        return "\n".join(lines)


def _with_run_secrets(settings: ClusterSettings) -> ClusterSettings:
    """The per-run secrets make run generates (Rasa API token, web chat secret), shared by all replicas."""
    import secrets

    from assistant.guard import new_secret

    return settings.model_copy(update={
        "rasa_api_token": settings.rasa_api_token or SecretStr(secrets.token_urlsafe(32)),
        "webchat_secret": settings.webchat_secret or SecretStr(new_secret()),
    })


def main() -> int:
    started = time.perf_counter()
    cluster = Cluster()
    s = cluster.settings
    print(f"Starting PostgreSQL, Redis, {s.cluster_replicas} Rasa replicas, "
          f"{s.cluster_action_servers or s.cluster_replicas} action servers"
          + (", the knowledge service" if s.cluster_knowledge else "") + " and HAProxy …", flush=True)
    try:
        cluster.start()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Ready in {time.perf_counter() - started:.0f} s.\n{cluster.describe()}\nCtrl-C stops everything.",
          flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    reported: set[str] = set()
    try:
        while True:
            for p in cluster.processes:
                if not p.alive() and p.name not in reported:
                    # The balancer routes around a dead replica; say so, keep the rest serving.
                    reported.add(p.name)
                    print(f"{p.name} stopped; last lines of {p.log_path}:\n{p.tail()}", file=sys.stderr, flush=True)
            if not cluster.balancer.alive() or all(not p.alive() for p in cluster.replicas()):
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
