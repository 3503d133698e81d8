"""Keep a set of child processes running: restart a crashed one with exponential backoff.

The launcher (``python -m service.stack``) hands its processes to a :class:`Supervisor` once all of
them are ready, then calls :meth:`Supervisor.tick` about twice a second until Ctrl-C/SIGTERM. A
process that exits is logged (exit code or signal, and the last lines of its log) and started again
after a delay: 1 s, 2 s, 4 s … capped at 30 s; the delay falls back to 1 s once a process has stayed
up for ``reset_after`` seconds. The other processes keep serving meanwhile. A process that was ready
and then stops answering HTTP at all (any status counts as an answer) for ``hung_after`` seconds is
killed (SIGKILL to its group) and restarted the same way: hung is as bad as dead.

Everything here works on the small :class:`Child` protocol and takes the clock as an argument, so
the policy is tested with fake processes and a fake clock (tests/test_supervisor.py).
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

log = logging.getLogger("assistant.supervisor")


class Child(Protocol):
    """What the supervisor needs of a process (service.stack.Process is one)."""

    name: str

    def start(self, log_dir: Path) -> None: ...

    def alive(self) -> bool: ...

    def ready(self) -> bool: ...

    def exit_code(self) -> int | None: ...

    def tail(self, lines: int = 25) -> str: ...

    def stop(self) -> None: ...

    def responds(self) -> bool: ...

    def kill(self) -> None: ...


@dataclass(frozen=True)
class Backoff:
    """Delays between restarts: ``initial`` × ``factor``^n, at most ``cap``; reset after ``reset_after`` s up."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.cap and self.factor >= 1 and self.reset_after >= 0):
            raise ValueError(f"invalid backoff {self}")

    def delay(self, failures: int) -> float:
        """Seconds to wait before restart number ``failures`` + 1 in a row (``failures`` ≥ 0)."""
        if failures < 0:
            raise ValueError("failures must be >= 0")
        # min() before the power would overflow for a process that crashed a thousand times
        exponent = min(failures, 64)
        return min(self.cap, self.initial * self.factor ** exponent)


def describe_exit(code: int | None) -> str:
    """'exit code 3', 'killed by SIGKILL', … (Popen.returncode is −N for signal N)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class Supervised:
    """One child and its restart state."""

    child: Child
    started_at: float
    failures: int = 0  # crashes in a row without a long enough run in between
    restart_at: float | None = None  # set while the child is down and waiting for its restart
    restarts: int = 0
    awaiting_ready: bool = False  # restarted, not yet answering its health check
    last_exit: str | None = None
    last_probe: float = float("-inf")
    silent_since: float | None = None  # first failed liveness probe of the current silence


@dataclass
class Supervisor:
    children: list[Child]
    log_dir: Path
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    hung_after: float = 60.0  # 0: never kill a process that is alive but silent
    probe_every: float = 5.0
    states: dict[str, Supervised] = field(init=False)

    def __post_init__(self) -> None:
        now = self.clock()
        self.states = {c.name: Supervised(c, started_at=now) for c in self.children}

    def tick(self) -> None:
        """Notice exits, schedule restarts, start the children whose delay is over, report readiness."""
        now = self.clock()
        for state in self.states.values():
            child = state.child
            if state.restart_at is None and not child.alive():
                self._crashed(state, now)
            elif state.restart_at is not None and now >= state.restart_at:
                self._restart(state, now)
            elif state.awaiting_ready:
                if child.alive() and child.ready():
                    state.awaiting_ready = False
                    log.warning("%s is ready again, %.1f s after its restart", child.name, now - state.started_at)
            elif self.hung_after > 0 and now - state.last_probe >= self.probe_every:
                self._probe(state, now)

    def _probe(self, state: Supervised, now: float) -> None:
        """Liveness of a child that was ready: kill it after ``hung_after`` s without any HTTP answer."""
        state.last_probe = now
        if state.child.responds():
            state.silent_since = None
            return
        if state.silent_since is None:
            state.silent_since = now
        elif now - state.silent_since >= self.hung_after:
            log.error("%s has not answered for %.0f s: killing it to restart it", state.child.name,
                      now - state.silent_since)
            state.silent_since = None
            state.child.kill()

    def _crashed(self, state: Supervised, now: float) -> None:
        child = state.child
        uptime = now - state.started_at
        if uptime >= self.backoff.reset_after:
            state.failures = 0
        delay = self.backoff.delay(state.failures)
        state.failures += 1
        state.restart_at = now + delay
        state.awaiting_ready = False
        state.last_exit = describe_exit(child.exit_code())
        tail = child.tail()
        log.error("%s stopped (%s) after %.1f s; restarting in %.0f s. Last lines of its log:\n%s",
                  child.name, state.last_exit, uptime, delay, tail or "(empty)")

    def _restart(self, state: Supervised, now: float) -> None:
        child = state.child
        state.restart_at = None
        state.started_at = now
        state.restarts += 1
        state.awaiting_ready = True
        state.silent_since = None
        try:
            child.stop()  # reaps what is left of its process group (a killed server's own children)
            child.start(self.log_dir)
        except OSError as exc:  # e.g. the executable vanished: try again later, with a longer delay
            log.error("could not restart %s: %s", child.name, exc)
            self._crashed(state, now)
            return
        log.warning("%s restarted (restart %d)", child.name, state.restarts)

    def status(self) -> dict[str, dict[str, object]]:
        """Per child: up or restarting, restarts so far, how the last run ended."""
        return {name: {"up": s.restart_at is None and s.child.alive(), "restarts": s.restarts,
                       "last_exit": s.last_exit} for name, s in self.states.items()}
