"""Issue 11, supervision (slow): the real launcher (``python -m service.stack``) with all three processes.

- kill -9 of each process in turn: the chat answers again within RECOVERY_SECONDS without anyone
  acting, and every reply meanwhile is a message, never ``[]``; the launcher logs how each one ended.
- a hung action server (SIGSTOP): after ASSISTANT_ACTION_TIMEOUT the user gets the fallback message,
  and after ASSISTANT_RESTART_HUNG_AFTER the launcher kills and restarts it.
- the readiness endpoints of the three processes report their dependencies.
- the web chat page, Rasa killed under it: it says the assistant restarts, and the question asked
  meanwhile is sent when Rasa is back and answered.
- SIGTERM stops the launcher and all its children.
- Rasa's TensorFlow models loaded by bot/fastload.py predict exactly what Rasa's own loader predicts.

The fast tests of the restart policy are in tests/test_supervisor.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import RASA_MODEL, free_ports
from test_web import ask, browser  # noqa: F401 (browser is a fixture)

ROOT = Path(__file__).resolve().parent.parent
RECOVERY_SECONDS = 30
ACTION_TIMEOUT = 15  # answers take up to ~10 s on this machine under load: a shorter timeout cuts real ones off
FALLBACK_SV = "Något gick fel hos mig – försök igen om en stund, eller be att få prata med en person."
QUESTION = "Vad är ett idéburet offentligt partnerskap?"
RASA_API_TOKEN = "supervision-test-rasa-api-secret-0123456789"
HUNG_AFTER = 40  # past the fallback (ACTION_TIMEOUT), so the hung test first sees a hung, not restarted, server

# serial: the recovery bounds (30 s after kill -9) are measured with the CPU to themselves; beside the
# other test process, Rasa's restart once took 30.2 s (load average 2.9 on 2 cores).
pytestmark = [pytest.mark.slow, pytest.mark.serial]


class Launcher:
    """``python -m service.stack`` as a child of the test, on free ports, with its own var/ in tmp."""

    def __init__(self, tmp: Path):
        self.port, self.actions_port, self.rasa_port = free_ports(3)
        self.log_dir = tmp / "log"
        self.output = tmp / "launcher.log"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "RASA_TELEMETRY_ENABLED": "false",
               "ASSISTANT_PORT": str(self.port), "ASSISTANT_ACTIONS_PORT": str(self.actions_port),
               "ASSISTANT_RASA_PORT": str(self.rasa_port), "ASSISTANT_TRACKER_DB": str(tmp / "tracker.db"),
               "ASSISTANT_INBOX_DB": str(tmp / "inbox.sqlite3"), "ASSISTANT_LOG_DIR": str(self.log_dir),
               "ASSISTANT_WEBCHAT_SOCKET_URL": f"http://127.0.0.1:{self.rasa_port}",
               "ASSISTANT_ACTION_TIMEOUT": str(ACTION_TIMEOUT), "ASSISTANT_RESTART_DELAY": "1",
               "ASSISTANT_MESSAGES_PER_MINUTE": "0",  # the tests ask again every second while waiting
               "ASSISTANT_RESTART_HUNG_AFTER": str(HUNG_AFTER),
               "ASSISTANT_START_TIMEOUT": "400",
               "ASSISTANT_BACKGROUND_TUNING": "false"}  # the shared var/index must not be rebuilt under other tests
        for name in ("ASSISTANT_REST_TOKEN", "ASSISTANT_HOST"):
            env.pop(name, None)
        env["ASSISTANT_RASA_API_TOKEN"] = RASA_API_TOKEN  # to read the tracker
        with self.output.open("wb") as out:
            self.popen = subprocess.Popen([sys.executable, "-m", "service.stack"], cwd=ROOT, env=env, stdout=out,
                                          stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 450) -> None:
        deadline = time.monotonic() + timeout
        while "Ready in" not in self.text():
            assert self.popen.poll() is None, f"the launcher stopped:\n{self.text()[-4000:]}"
            assert time.monotonic() < deadline, f"not ready:\n{self.text()[-4000:]}"
            time.sleep(1)

    def child(self, name: str) -> int:
        """Pid of the launcher's child running ``name`` (knowledge-service, action-server, rasa)."""
        marker = {"knowledge-service": ["-m", "service"], "action-server": ["-m", "actions"],
                  "rasa": ["-m", "bot.launch"]}[name]
        pid = self.popen.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
            if any(argv[i:i + 2] == marker for i in range(len(argv))):
                return int(child)
        raise AssertionError(f"no {name} among the launcher's children {children}")

    def chat(self, sender: str, text: str, timeout: float = 60) -> list[dict] | None:
        """Rasa's REST reply, or None when Rasa does not answer at all (down)."""
        try:
            r = httpx.post(f"http://127.0.0.1:{self.rasa_port}/webhooks/rest/webhook",
                           json={"sender": sender, "message": text}, timeout=timeout)
        except httpx.TransportError:
            return None
        assert r.status_code == 200, r.text
        return r.json()

    def ready(self, port: int) -> httpx.Response | None:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
        except httpx.TransportError:
            return None

    def events(self, conversation_id: str) -> list[dict]:
        from service.rasa_api import rasa_api_jwt

        jwt = rasa_api_jwt(RASA_API_TOKEN, conversation_id, "user")
        r = httpx.get(f"http://127.0.0.1:{self.rasa_port}/conversations/{conversation_id}/tracker",
                      params={"include_events": "ALL"}, headers={"Authorization": f"Bearer {jwt}"}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["events"]

    def wait_all_ready(self, timeout: float = 180) -> None:
        """All three processes ready (a test after a kill starts from a whole stack)."""
        deadline = time.monotonic() + timeout
        for port in (self.port, self.actions_port, self.rasa_port):
            while (r := self.ready(port)) is None or r.json().get("status") != "ready":
                assert time.monotonic() < deadline, f"port {port} not ready: {r and r.text}"
                time.sleep(1)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=60)


def answered(reply: list[dict] | None) -> bool:
    return bool(reply) and any(isinstance(m.get("custom"), dict) and m["custom"].get("citations") for m in reply)


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    if not RASA_MODEL.exists():
        pytest.fail(f"no trained model at {RASA_MODEL}: run `make train`")
    stack = Launcher(tmp_path_factory.mktemp("supervised"))
    try:
        stack.wait_ready()
        yield stack
    finally:
        children = []
        try:
            children = [stack.child(n) for n in ("knowledge-service", "action-server", "rasa")]
        except (AssertionError, OSError):
            pass
        stack.stop()
        for pid in children:  # never leave servers behind, whatever happened
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_readiness_reports_each_dependency(launcher):
    for port in (launcher.port, launcher.actions_port, launcher.rasa_port):
        live = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
        assert live.status_code == 200 and live.json() == {"status": "alive"}
    knowledge = launcher.ready(launcher.port).json()
    assert knowledge["status"] == "ready" and set(knowledge["checks"]) == {"index", "inbox"}
    actions = launcher.ready(launcher.actions_port).json()
    assert actions["status"] == "ready" and set(actions["checks"]) == {"answer_engine", "inbox"}
    assert "paragraphs" in actions["checks"]["answer_engine"]["detail"]
    rasa = launcher.ready(launcher.rasa_port).json()
    assert rasa["status"] == "ready" and set(rasa["checks"]) == {"model", "tracker", "action_server"}
    assert all(c["ok"] for c in rasa["checks"].values())


def test_a_hung_action_server_gets_the_fallback_then_is_killed_and_restarted(launcher):
    """One hang (SIGSTOP: alive, answering nothing), two bounds: within ASSISTANT_ACTION_TIMEOUT the user
    gets the fallback and Rasa stays in rotation, degraded, with the hung process left alone; after
    ASSISTANT_RESTART_HUNG_AFTER the launcher kills and restarts it and the chat answers again. (Two tests
    until session 25, each waiting out its own hang: about 35 s more of the serial run.)"""
    launcher.wait_all_ready()
    assert answered(launcher.chat("hung-" + uuid.uuid4().hex[:6], QUESTION))
    pid = launcher.child("action-server")
    os.kill(pid, signal.SIGSTOP)  # alive but answering nothing: slow, from Rasa's side
    stopped = time.monotonic()
    sender = "hung-" + uuid.uuid4().hex[:6]
    try:
        reply = launcher.chat(sender, QUESTION)
        took = time.monotonic() - stopped
        assert reply == [{"recipient_id": f"rest:{sender}", "text": FALLBACK_SV}]
        assert ACTION_TIMEOUT - 1 < took < ACTION_TIMEOUT + 20
        # The tracker records what was sent, not an answer: the turn rewound, then the fallback.
        log = launcher.events(f"rest:{sender}")
        after = log[max(i for i, e in enumerate(log) if e["event"] == "user") + 1:]
        assert [e["text"] for e in after if e["event"] == "bot"] == [FALLBACK_SV]
        kinds = [e["event"] for e in after]
        assert "rewind" in kinds and kinds.index("rewind") < kinds.index("bot")
        assert (after[-1]["event"], after[-1].get("name")) == ("action", "action_listen")
        rasa = launcher.ready(launcher.rasa_port)  # Rasa stays in rotation, degraded: it still replies
        assert rasa.status_code == 200 and rasa.json()["status"] == "degraded"
        assert rasa.json()["checks"]["action_server"]["ok"] is False
        assert time.monotonic() - stopped < HUNG_AFTER - 5, "too slow to see the hung server before its restart"
        assert launcher.child("action-server") == pid  # a hung process is not a crashed one: not restarted yet
        assert "action-server has not answered for" not in launcher.text()
        # Still hung past ASSISTANT_RESTART_HUNG_AFTER: killed and restarted, and the chat answers again.
        while "action-server has not answered for" not in launcher.text():
            assert time.monotonic() - stopped < HUNG_AFTER + 60, "a hung action server was never killed"
            time.sleep(1)
        assert time.monotonic() - stopped >= HUNG_AFTER - 1
        launcher.wait_all_ready()
        assert launcher.child("action-server") != pid
        assert answered(launcher.chat("after-hang-" + uuid.uuid4().hex[:6], QUESTION))
    finally:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("name", ["action-server", "rasa", "knowledge-service"])
def test_kill_9_of_one_process_the_chat_answers_again_by_itself(launcher, name):
    sender = f"kill-{name}-{uuid.uuid4().hex[:6]}"
    launcher.wait_all_ready()
    assert answered(launcher.chat(sender, QUESTION))
    pid = launcher.child(name)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    replies = []
    while True:
        reply = launcher.chat(sender, QUESTION, timeout=RECOVERY_SECONDS)
        replies.append(reply)
        assert reply != [], "an empty reply during the outage"
        if reply is not None and not answered(reply):  # Rasa up, action server down: the fallback
            assert [m.get("text") for m in reply] == [FALLBACK_SV], reply
        if answered(reply):
            break
        # Past the bound it keeps asking a while, so a failure says whether the chat came back late
        # (a loaded machine) or not at all (a bug).
        assert time.monotonic() - killed < RECOVERY_SECONDS + 120, f"no answer at all after kill -9 of {name}"
        time.sleep(1)
    recovered = time.monotonic() - killed
    assert recovered <= RECOVERY_SECONDS, (f"the chat answered again {recovered:.0f} s after kill -9 of {name}, "
                                           f"more than {RECOVERY_SECONDS} s (load average "
                                           f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    port = {"knowledge-service": launcher.port, "action-server": launcher.actions_port, "rasa": launcher.rasa_port}[name]
    while (r := launcher.ready(port)) is None or r.status_code != 200:  # the killed process itself is back
        assert time.monotonic() - killed < RECOVERY_SECONDS + 60, f"{name} not ready again"
        time.sleep(0.5)
    assert launcher.child(name) != pid
    assert f"{name} stopped (killed by SIGKILL)" in launcher.text()
    if name == "knowledge-service":  # the chat does not need it: answered at once
        assert len(replies) == 1
    print(f"kill -9 {name}: answered again after {recovered:.1f} s ({len(replies)} tries)")


def test_the_web_chat_says_the_assistant_restarts_and_sends_the_message_when_it_is_back(launcher, browser):  # noqa: F811
    launcher.wait_all_ready()
    context = browser.new_context(viewport={"width": 1100, "height": 900}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{launcher.port}/")
        page.wait_for_function("localStorage.getItem('procurement-assistant-session') !== null", timeout=30_000)
        os.kill(launcher.child("rasa"), signal.SIGKILL)
        page.wait_for_function("document.getElementById('status').textContent !== ''", timeout=30_000)
        ask(page, "Vad är ett ramavtal?")
        working = page.locator("#working")
        page.wait_for_function("document.getElementById('working').textContent.includes('startar om')",
                               timeout=15_000)
        assert working.is_visible() and page.locator("#failure").is_hidden()
        page.wait_for_function("document.querySelectorAll('.msg--answer').length >= 1", timeout=120_000)
        assert page.locator(".msg--user").count() == 1 and page.locator("#failure").is_hidden()
        assert "ramavtal" in page.locator(".msg--answer").first.inner_text().lower()
    finally:
        context.close()


def test_sigterm_stops_the_launcher_and_every_child(launcher):
    children = [launcher.child(n) for n in ("knowledge-service", "action-server", "rasa")]
    assert launcher.stop() == 0
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in children):
        assert time.monotonic() < deadline, "children outlived the launcher"
        time.sleep(0.2)
