"""docker/: what can be checked without a Docker engine (none runs here).

The Compose file is validated against the Compose specification's JSON schema; the Dockerfiles
get the checks a linter such as hadolint would make (pinned base images and packages, no root
user at run time, no secrets, exec-form commands, files that exist).
"""

from __future__ import annotations

import json
import re
import importlib.util
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yml").read_text(encoding="utf-8"))


def test_compose_file_matches_the_compose_specification():
    # The schema file only: importing check_jsonschema would need its own dependencies (not installed).
    spec = importlib.util.find_spec("check_jsonschema")
    assert spec is not None and spec.origin, "check-jsonschema is not installed (make install)"
    path = Path(spec.origin).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(compose(), schema)


def test_compose_runs_every_part_with_health_checks_and_volumes():
    services = compose()["services"]
    assert set(services) == {"knowledge", "actions", "rasa", "postgres", "redis", "balancer"}
    assert services["knowledge"]["environment"]["ASSISTANT_INBOX_TOKEN"].startswith("${INBOX_TOKEN:?")
    for name, service in services.items():
        assert "healthcheck" in service, name
    for name in ("knowledge", "actions"):
        mounts = {v.split(":")[1] for v in services[name]["volumes"]}
        assert {"/data/models", "/data/index"} <= mounts
    assert services["rasa"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["rasa"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["rasa"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_rasa_endpoints_for_compose_use_postgres_and_redis():
    endpoints = yaml.safe_load((DOCKER / "endpoints.yml").read_text(encoding="utf-8"))
    assert endpoints["tracker_store"]["dialect"] == "postgresql"
    # Rasa's own RedisLockStore races between replicas (bot/lock_store.py); Redis needs its password.
    assert endpoints["lock_store"]["type"] == "bot.lock_store.AtomicRedisLockStore"
    assert endpoints["lock_store"]["password"] == "${REDIS_PASSWORD}"


def test_compose_runs_replicas_behind_a_balancer_on_shared_postgres_and_redis():
    services = compose()["services"]
    assert services["rasa"]["deploy"]["replicas"] == "${RASA_REPLICAS:-2}"
    assert services["actions"]["deploy"]["replicas"] == "${ACTION_REPLICAS:-2}"
    assert "ports" not in services["rasa"]  # replicas are reached through the balancer only
    assert services["balancer"]["ports"] == ["127.0.0.1:5005:5005"]
    assert services["balancer"]["depends_on"]["rasa"]["condition"] == "service_healthy"
    rasa = services["rasa"]["environment"]
    assert rasa["ASSISTANT_REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")  # web chat across replicas
    for name in ("knowledge", "actions"):  # the inbox on PostgreSQL, shared by every replica
        assert services[name]["environment"]["ASSISTANT_INBOX_DB"].startswith("postgresql://")
        assert "@postgres:5432/inbox" in services[name]["environment"]["ASSISTANT_INBOX_DB"]
    assert "CREATE DATABASE inbox" in (DOCKER / "postgres-init.sql").read_text(encoding="utf-8")
    assert services["knowledge"]["environment"]["ASSISTANT_RASA_URL"] == "http://balancer:5005"
    credentials = yaml.safe_load((DOCKER / "credentials.yml").read_text(encoding="utf-8"))
    assert credentials["bot.connectors.webchat.WebChatInput"]["redis_url"] == "${ASSISTANT_REDIS_URL}"
    haproxy = (DOCKER / "haproxy.cfg").read_text(encoding="utf-8")
    assert "server-template rasa" in haproxy and "option httpchk GET /webhooks/rest/" in haproxy
    assert re.search(r"backend rasa_webchat\n\s+balance source", haproxy)  # socket.io sessions are sticky


def test_redis_in_compose_has_a_password_that_is_not_on_its_command_line():
    redis = compose()["services"]["redis"]
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    command = " ".join(redis["command"])
    assert "requirepass" in command and "--requirepass" not in command and "exec redis-server /tmp/redis.conf" in command
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])


def test_compose_passes_the_action_timeout_to_rasa():
    assert compose()["services"]["rasa"]["environment"]["ASSISTANT_ACTION_TIMEOUT"] == "${ACTION_TIMEOUT:-30}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_entrypoint_scripts_are_not_writable_by_the_runtime_user(dockerfile: Path):
    text = dockerfile.read_text(encoding="utf-8")
    [entrypoint] = re.findall(r'^ENTRYPOINT \["([^"]+)"', text, re.M)
    [copy] = [l for l in text.splitlines() if l.startswith("COPY ") and l.rstrip().endswith(" " + entrypoint)]
    assert "--chown" not in copy, copy  # COPY without --chown: owned by root
    assert "--chmod=0755" in copy or "--chmod=755" in copy, copy  # executable, writable by root only
    for chown in re.findall(r"chown[^\n&]*", text):
        assert not any(part in chown for part in ("/usr/local/bin", entrypoint)), chown


@pytest.mark.slow
def test_haproxy_accepts_the_compose_and_the_cluster_configurations(tmp_path):
    import shutil
    import subprocess

    from service.cluster import haproxy_config

    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert Path(haproxy).exists(), "HAProxy is not installed: make cluster-deps"
    generated = tmp_path / "haproxy.cfg"
    generated.write_text(haproxy_config("127.0.0.1", 5999, [("rasa-1", "127.0.0.1", 6001), ("rasa-2", "127.0.0.1", 6002)],
                                        5998))
    for config in (DOCKER / "haproxy.cfg", generated):
        done = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_lint(dockerfile: Path):
    lines = [l.strip() for l in dockerfile.read_text(encoding="utf-8").splitlines()]
    instructions = [l for l in lines if l and not l.startswith("#")]
    froms = [l for l in instructions if l.startswith("FROM ")]
    assert froms and all(re.match(r"FROM [\w./-]+:\d[\w.-]*", f) for f in froms), "pin base images (DL3006/DL3007)"
    text = "\n".join(instructions)
    assert "USER " in text and not re.search(r"^USER root\s*$", text, re.M), "do not run as root (DL3002)"
    for cmd in re.findall(r"^(?:CMD|ENTRYPOINT) (.*)$", text, re.M):
        assert cmd.startswith("["), "exec form for CMD/ENTRYPOINT (DL3025)"
    for pip in re.findall(r"pip install ([^\n\\&]*)", text):
        for token in pip.split():
            if not token.startswith("-") and re.match(r"^[A-Za-z]", token) and "/" not in token:
                assert "==" in token, f"pin pip packages (DL3013): {token}"
    assert not re.search(r"(PASSWORD|SECRET|TOKEN)=\S", text), "no secrets in images"
    assert "apt-get upgrade" not in text and "sudo " not in text
    for src in re.findall(r"^COPY (?!.*--from=)(?:--\S+ )*(\S+) ", text, re.M):
        assert (ROOT / src.rstrip("/")).exists(), f"COPY source missing: {src}"
