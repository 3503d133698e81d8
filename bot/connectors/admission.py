"""Admission control: past a number of messages in progress, answer "many are asking" at once.

One Rasa process works through its messages on one event loop and two cores; past a point, every
extra message in progress only makes everyone wait longer (measured: 20 users → p50 4.0 s, 40 →
7.5 s). :data:`GATE` counts the messages this process is handling, in every channel together. When
``ASSISTANT_MAX_MESSAGES_IN_FLIGHT`` are already in progress, a new one is not processed: the user
at once gets :data:`BUSY` ("Många frågar just nu – försök igen om en stund", English when written
in English), and REST answers 503 with Retry-After. Nothing of a refused message reaches the NLU or
the tracker, so asking again simply works. 0 turns the gate off.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Awaitable, Callable, Optional

from rasa.core.channels.channel import UserMessage

from assistant import guard

logger = logging.getLogger(__name__)

LIMIT_VARIABLE = "ASSISTANT_MAX_MESSAGES_IN_FLIGHT"
DEFAULT_LIMIT = 12
RETRY_AFTER_SECONDS = 5
BUSY = {
    "sv": "Många frågar just nu – försök igen om en stund.",
    "en": "Many people are asking right now – please try again in a moment.",
}


class AdmissionGate:
    """Counts messages in progress; ``try_enter`` refuses past ``limit`` (0 = no limit).

    Only touched from the event loop's thread (Rasa's channels are async), so no lock is needed."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"{LIMIT_VARIABLE} must be 0 (off) or more")
        self.limit = limit
        self.in_flight = 0
        self.refused = 0

    def try_enter(self) -> bool:
        if self.limit and self.in_flight >= self.limit:
            self.refused += 1
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)


def limit_from(environ: dict) -> int:
    value = (environ.get(LIMIT_VARIABLE) or "").strip()
    if not value:
        return DEFAULT_LIMIT
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{LIMIT_VARIABLE} must be a whole number, not {value!r}") from None


GATE = AdmissionGate(limit_from(dict(os.environ)))


def busy_text(text: Any) -> str:
    return BUSY[guard.language_of(text)]


def admitted(on_new_message: Callable[[UserMessage], Awaitable[Any]],
             gate: Optional[AdmissionGate] = None) -> Callable[[UserMessage], Awaitable[None]]:
    """``on_new_message`` behind the gate: a message over the limit gets :data:`BUSY` instead."""

    async def handle(message: UserMessage) -> None:
        g = gate or GATE
        if not g.try_enter():
            logger.warning("busy: %d messages in progress, refused one of %s", g.in_flight, message.sender_id)
            await message.output_channel.send_text_message(message.sender_id, busy_text(message.text))
            return
        try:
            await on_new_message(message)
        finally:
            g.leave()

    return handle
