"""Admission control: when a new message would wait too long, answer "many are asking" at once.

One Rasa process works through its messages on one event loop and two cores; past a point, every
extra message in progress only makes everyone wait longer (measured: 20 users → p50 4.0 s, 40 →
7.5 s). :data:`GATE` counts the messages this process is handling, in every channel together, and
how fast they complete. A new message is refused when the messages already in progress would keep
it waiting longer than ``ASSISTANT_MAX_EXPECTED_WAIT_SECONDS`` (in progress × the recent time between
two completions, Little's law), or when ``ASSISTANT_MAX_MESSAGES_IN_FLIGHT`` are in progress (a hard
cap). The wait adapts the gate to the machine: a count alone let a slow machine's users wait
seconds and turned a fast machine's users away while it kept up. A refused user at once gets
:data:`BUSY` ("Många frågar just nu – försök igen om en stund", English when written in English),
and REST answers 503 with Retry-After. Nothing of a refused message reaches the NLU or the tracker,
so asking again simply works. 0 turns either limit off.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Awaitable, Callable, Optional

from rasa.core.channels.channel import UserMessage

from assistant import guard

logger = logging.getLogger(__name__)

LIMIT_VARIABLE = "ASSISTANT_MAX_MESSAGES_IN_FLIGHT"
DEFAULT_LIMIT = 48
WAIT_VARIABLE = "ASSISTANT_MAX_EXPECTED_WAIT_SECONDS"
DEFAULT_MAX_WAIT = 1.5
MIN_IN_FLIGHT = 4  # never refused below this many in progress (one slow message says little about the pace)
PACE_WEIGHT = 0.2  # weight of the newest interval in the moving average of the time between completions
RETRY_AFTER_SECONDS = 5
BUSY = {
    "sv": "Många frågar just nu – försök igen om en stund.",
    "en": "Many people are asking right now – please try again in a moment.",
}


class AdmissionGate:
    """Counts messages in progress and the pace they complete at; ``try_enter`` refuses a message that
    would wait longer than ``max_wait`` seconds, or past ``limit`` in progress (0 = no such limit).

    The pace is a moving average of the time between two completions, measured only while messages
    were waiting throughout (an interval that began with nothing in progress holds idle time). With
    n in progress, a new message waits about n × pace. Only touched from the event loop's thread
    (Rasa's channels are async), so no lock is needed."""

    def __init__(self, limit: int, max_wait: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 0:
            raise ValueError(f"{LIMIT_VARIABLE} must be 0 (off) or more")
        if max_wait < 0:
            raise ValueError(f"{WAIT_VARIABLE} must be 0 (off) or more")
        self.limit, self.max_wait, self.clock = limit, max_wait, clock
        self.in_flight = 0
        self.refused = 0
        self.pace: Optional[float] = None  # seconds between completions while busy (None: not measured yet)
        self._last_done: Optional[float] = None  # when the last message completed, if others were still in progress

    def expected_wait(self) -> float:
        return self.in_flight * self.pace if self.pace is not None else 0.0

    def try_enter(self) -> bool:
        full = bool(self.limit) and self.in_flight >= self.limit
        slow = bool(self.max_wait) and self.in_flight >= MIN_IN_FLIGHT and self.expected_wait() > self.max_wait
        if full or slow:
            self.refused += 1
            return False
        if self.in_flight == 0:
            self._last_done = None  # the next interval would include idle time
        self.in_flight += 1
        return True

    def leave(self) -> None:
        now = self.clock()
        if self._last_done is not None:
            interval = now - self._last_done
            self.pace = interval if self.pace is None else self.pace + PACE_WEIGHT * (interval - self.pace)
        self.in_flight = max(0, self.in_flight - 1)
        self._last_done = now if self.in_flight else None


def _number(environ: dict, name: str, default, kind):
    value = (environ.get(name) or "").strip()
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number < 0:
        raise SystemExit(f"{name} must be 0 (off) or a positive {'whole ' if kind is int else ''}number, not {value!r}")
    return number


def limit_from(environ: dict) -> int:
    return _number(environ, LIMIT_VARIABLE, DEFAULT_LIMIT, int)


def max_wait_from(environ: dict) -> float:
    return _number(environ, WAIT_VARIABLE, DEFAULT_MAX_WAIT, float)


GATE = AdmissionGate(limit_from(dict(os.environ)), max_wait_from(dict(os.environ)))


def busy_text(text: Any) -> str:
    return BUSY[guard.language_of(text)]


def admitted(on_new_message: Callable[[UserMessage], Awaitable[Any]],
             gate: Optional[AdmissionGate] = None) -> Callable[[UserMessage], Awaitable[None]]:
    """``on_new_message`` behind the gate: a message over the limit gets :data:`BUSY` instead."""

    async def handle(message: UserMessage) -> None:
        g = gate or GATE
        if not g.try_enter():
            logger.warning("busy: %d messages in progress (expected wait %.1f s), refused one of %s",
                           g.in_flight, g.expected_wait(), message.sender_id)
            await message.output_channel.send_text_message(message.sender_id, busy_text(message.text))
            return
        try:
            await on_new_message(message)
        finally:
            g.leave()

    return handle
