"""The launcher's restart policy (service/supervisor.py) with fake processes and a fake clock, and
service.stack.Process against real short-lived processes."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

import pytest

from service.supervisor import Backoff, Supervisor, describe_exit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeChild:
    """A process that runs until ``crash`` is called; ``start`` brings it back."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.running = True
        self.code: int | None = None
        self.starts = 0
        self.stops = 0
        self.answers = True
        self.responding = True  # answers HTTP at all (a hung process does not)
        self.kills = 0

    def crash(self, code: int) -> None:
        self.running, self.code = False, code

    def start(self, log_dir: Path) -> None:
        self.running, self.code = True, None
        self.starts += 1

    def alive(self) -> bool:
        return self.running

    def ready(self) -> bool:
        return self.running and self.answers

    def exit_code(self) -> int | None:
        return self.code

    def tail(self, lines: int = 25) -> str:
        return f"last words of {self.name}"

    def stop(self) -> None:
        self.stops += 1

    def responds(self) -> bool:
        return self.running and self.responding

    def kill(self) -> None:
        self.kills += 1
        self.crash(-signal.SIGKILL)


def run_until_restarted(sup: Supervisor, clock: Clock, child: FakeChild, step: float = 0.25) -> float:
    """Ticks the supervisor until ``child`` runs again; returns the seconds that took."""
    began, starts = clock.now, child.starts
    while child.starts == starts:
        sup.tick()
        clock.now += step
        assert clock.now - began < 3600, "never restarted"
    return clock.now - step - began


def test_backoff_doubles_up_to_the_cap():
    b = Backoff(initial=1, factor=2, cap=30)
    assert [b.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert b.delay(10_000) == 30  # no overflow for a process that crashed forever
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(initial=60, cap=30)


def test_describe_exit_names_the_signal():
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(0) == "exit code 0"
    assert describe_exit(None) == "still running"


def test_a_crashed_child_is_restarted_with_growing_delays_while_the_others_keep_running(tmp_path, caplog):
    clock = Clock()
    rasa, actions = FakeChild("rasa"), FakeChild("actions")
    sup = Supervisor([rasa, actions], tmp_path, Backoff(initial=1, cap=30, reset_after=60), clock=clock)
    delays = []
    with caplog.at_level(logging.INFO, logger="assistant.supervisor"):
        for _ in range(7):
            rasa.crash(-signal.SIGKILL)
            delays.append(run_until_restarted(sup, clock, rasa))
            assert actions.starts == 0 and actions.stops == 0 and actions.alive()  # untouched
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert rasa.stops == 7  # leftovers of its process group are reaped before each start
    assert "rasa stopped (killed by SIGKILL)" in caplog.text and "last words of rasa" in caplog.text
    assert sup.status()["rasa"] == {"up": True, "restarts": 7, "last_exit": "killed by SIGKILL"}


def test_the_delay_resets_after_a_long_enough_run(tmp_path):
    clock = Clock()
    child = FakeChild("actions")
    sup = Supervisor([child], tmp_path, Backoff(initial=1, cap=30, reset_after=60), clock=clock)
    for _ in range(4):
        child.crash(1)
        run_until_restarted(sup, clock, child)
    clock.now += 59  # not long enough: the next delay keeps growing
    child.crash(1)
    assert run_until_restarted(sup, clock, child) == 16
    clock.now += 61
    child.crash(1)
    assert run_until_restarted(sup, clock, child) == 1


def test_readiness_after_a_restart_is_reported_once(tmp_path, caplog):
    clock = Clock()
    child = FakeChild("rasa")
    sup = Supervisor([child], tmp_path, Backoff(initial=1), clock=clock)
    child.crash(-signal.SIGKILL)
    child.answers = False
    with caplog.at_level(logging.INFO, logger="assistant.supervisor"):
        run_until_restarted(sup, clock, child)
        for _ in range(4):
            sup.tick()
        assert "ready again" not in caplog.text
        clock.now += 12
        child.answers = True
        sup.tick()
        sup.tick()
    assert caplog.text.count("rasa is ready again") == 1 and "12.2 s after its restart" in caplog.text


def test_a_failing_start_is_retried_later(tmp_path):
    clock = Clock()
    child = FakeChild("rasa")
    attempts = []

    def broken_start(log_dir: Path) -> None:
        attempts.append(clock.now)
        raise FileNotFoundError("no python")

    sup = Supervisor([child], tmp_path, Backoff(initial=1, cap=30), clock=clock)
    child.crash(1)
    child.start = broken_start
    for _ in range(40):
        sup.tick()
        clock.now += 0.25
    assert [round(t - attempts[0], 2) for t in attempts] == [0, 2, 6]  # 1 s, then 2 s, then 4 s later


def test_a_hung_child_is_killed_after_hung_after_seconds_and_restarted(tmp_path, caplog):
    clock = Clock()
    rasa, actions = FakeChild("rasa"), FakeChild("actions")
    sup = Supervisor([rasa, actions], tmp_path, Backoff(initial=1), clock=clock, hung_after=60, probe_every=5)
    actions.responding = False  # alive, silent
    with caplog.at_level(logging.INFO, logger="assistant.supervisor"):
        while actions.kills == 0:
            sup.tick()
            clock.now += 0.5
            assert clock.now < 1000 + 120
    assert 60 <= clock.now - 1000 <= 66 and rasa.kills == 0
    assert "actions has not answered for 60 s: killing it" in caplog.text
    actions.responding = True
    run_until_restarted(sup, clock, actions)
    assert actions.starts == 1 and sup.status()["actions"]["last_exit"] == "killed by SIGKILL"


def test_a_short_silence_or_a_slow_start_is_not_killed(tmp_path):
    clock = Clock()
    child = FakeChild("rasa")
    sup = Supervisor([child], tmp_path, Backoff(initial=1), clock=clock, hung_after=60, probe_every=5)
    child.responding = False
    for _ in range(100):  # 50 s silent, then answering again: the silence starts over
        sup.tick()
        clock.now += 0.5
    child.responding = True
    sup.tick()
    child.responding = False
    for _ in range(100):
        sup.tick()
        clock.now += 0.5
    assert child.kills == 0
    # A restarted process loading its model answers nothing for minutes: not ready yet, never killed.
    child.crash(1)
    child.answers = False
    run_until_restarted(sup, clock, child)
    for _ in range(400):
        sup.tick()
        clock.now += 0.5
    assert child.kills == 0
    off = Supervisor([FakeChild("x")], tmp_path, clock=clock, hung_after=0)
    off.children[0].responding = False
    for _ in range(400):
        off.tick()
        clock.now += 0.5
    assert off.children[0].kills == 0


# -- service.stack.Process with real processes ----------------------------------------------------
def test_process_reports_how_it_ended_and_stop_reaps_its_group(tmp_path):
    from service.stack import Process

    p = Process("sleeper", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
                "http://127.0.0.1:9/")
    p.start(tmp_path)
    assert p.alive() and p.exit_code() is None
    deadline = time.monotonic() + 20
    while not p.tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    p.popen.send_signal(signal.SIGKILL)
    p.popen.wait(10)
    assert not p.alive() and describe_exit(p.exit_code()) == "killed by SIGKILL"
    assert p.tail() == "up"

    # A server whose leader is killed leaves its own children behind; stop() ends them too.
    spawner = Process("spawner", [sys.executable, "-c",
                                  "import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', "
                                  "'import time; time.sleep(60)']); print(c.pid, flush=True); time.sleep(60)"],
                      "http://127.0.0.1:9/")
    spawner.start(tmp_path)
    deadline = time.monotonic() + 20
    while not spawner.tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(spawner.tail())
    spawner.popen.send_signal(signal.SIGKILL)
    spawner.popen.wait(10)
    assert Path(f"/proc/{grandchild}").exists()
    spawner.stop()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{grandchild}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{grandchild}").exists()
