"""bot/fastload.py, the loader the Rasa server uses, predicts exactly what Rasa's own loader predicts
(tests/rasa_load_probe.py runs each in Rasa's environment). Compares CPU seconds, not wall time, so it
runs beside the other test process (it was in tests/test_supervision.py, whose tests run alone)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import RASA_MODEL

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


# -- Rasa's model loading -------------------------------------------------------------------------
def probe(*args: str) -> dict:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
           "RASA_CACHE_DIRECTORY": str(ROOT / "var" / "rasa" / "cache")}
    done = subprocess.run([str(ROOT / ".venv-rasa" / "bin" / "python"), "tests/rasa_load_probe.py", str(RASA_MODEL),
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_fast_loader_predicts_exactly_what_rasas_loader_predicts():
    if not RASA_MODEL.exists():
        pytest.fail(f"no trained model at {RASA_MODEL}: run `make train`")
    rasa, fast = probe(), probe("--fast")
    assert len(rasa["nlu"]) > 350 and len(rasa["core"]) > 10
    assert fast["nlu"] == rasa["nlu"]  # intent rankings (5 decimals) and entities of every message
    assert fast["core"] == rasa["core"]  # action, policy and confidence at every step of every story
    assert fast["load_cpu_seconds"] < 0.5 * rasa["load_cpu_seconds"], (fast["load_cpu_seconds"],
                                                                        rasa["load_cpu_seconds"])
