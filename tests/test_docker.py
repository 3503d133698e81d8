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
    assert set(services) == {"knowledge", "actions", "rasa", "postgres", "redis"}
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
    assert endpoints["lock_store"]["type"] == "redis"


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
