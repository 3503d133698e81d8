"""Never an empty reply: what every channel does when Rasa produced nothing to send.

When the action server is down, refuses or times out, Rasa 3.6 logs the error, records the action as
executed without its events and carries on (``MessageProcessor._run_action``); the user then gets
nothing (REST: HTTP 200 with ``[]``, web chat: silence). :func:`never_silent` wraps a channel's
``on_new_message``: it counts what the output channel actually sent, and when a message got no reply
at all (or handling it raised) it sends :data:`assistant.guard.FAILED` ("Något gick fel hos mig …",
English when the user wrote English) instead.

The tracker: Rasa has already stored the turn with the failed action in it, as if it had answered.
As far as Rasa allows, that is undone: under the conversation's lock, a ``UserUtteranceReverted``
rewinds the turn (the policies see the conversation as before the message, so asking again starts
afresh; the events stay in the store, as every Rasa event does), and a ``BotUttered`` with the
fallback text records what the user was actually sent (metadata ``{"assistant_fallback": true}``),
and an ``action_listen`` ends the turn as Rasa ends every turn (the rewind removed the one before it).
This is done only when the conversation's latest user message is this message (matching message id),
so a failure before Rasa stored the message never rewinds an earlier turn.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage

from assistant import guard

logger = logging.getLogger(__name__)


class CountingOutput(OutputChannel):
    """Passes everything to ``inner`` and counts the messages it delivered without an error."""

    def __init__(self, inner: OutputChannel) -> None:
        self.inner = inner
        self.sent = 0

    def name(self) -> Text:  # Rasa picks channel-specific responses by this name
        return self.inner.name()

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        await self.inner.send_response(recipient_id, message)
        self.sent += 1

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.inner.send_text_message(recipient_id, text, **kwargs)
        self.sent += 1

    async def send_text_with_buttons(self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]],
                                     **kwargs: Any) -> None:
        await self.inner.send_text_with_buttons(recipient_id, text, buttons, **kwargs)
        self.sent += 1

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        await self.inner.send_custom_json(recipient_id, json_message, **kwargs)
        self.sent += 1

    def __getattr__(self, attribute: str) -> Any:  # e.g. CollectingOutputChannel.messages
        return getattr(self.inner, attribute)


def _agent() -> Optional[Any]:
    """Rasa's agent, when this runs inside Rasa's server (None in a bare Sanic app, as in tests)."""
    try:
        from sanic import Sanic

        return getattr(Sanic.get_app().ctx, "agent", None)
    except Exception:  # no app, or more than one
        return None


async def undo_unanswered_turn(message: UserMessage, text: Text) -> bool:
    """Rewind the turn of ``message`` in its tracker and record ``text`` as what was sent instead.

    True when the tracker was changed.
    """
    agent = _agent()
    processor = getattr(agent, "processor", None)
    if processor is None:
        return False
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUtteranceReverted

    async with agent.lock_store.lock(message.sender_id):
        tracker = await processor.get_tracker(message.sender_id)
        latest = tracker.latest_message
        if latest is None or not latest.message_id or latest.message_id != message.message_id:
            return False
        tracker.update(UserUtteranceReverted())
        tracker.update(BotUttered(text, metadata={"assistant_fallback": True}))
        # The rewind also takes back the action_listen before the message (Rasa: "seeing a user uttered
        # event implies a listen right before it"); without a new one the next message would follow the
        # previous turn's last action, a state the policies never saw: they looped or answered nothing,
        # and the conversation stayed broken after the action server came back.
        tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
        await processor.save_tracker(tracker)
    return True


def never_silent(on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Callable[[UserMessage], Awaitable[None]]:
    """``on_new_message`` that always answers: the fallback text when Rasa sent nothing."""

    async def handle(message: UserMessage) -> None:
        out = CountingOutput(message.output_channel)
        message.output_channel = out
        try:
            await on_new_message(message)
        except Exception:
            logger.exception("handling a message of %s failed", message.sender_id)
        if out.sent:
            return
        lang = guard.language_of(message.text)
        text = guard.FAILED[lang]
        logger.error("no reply to a message of %s (action server down or timed out?): sent the fallback",
                     message.sender_id)
        try:
            await out.inner.send_text_message(message.sender_id, text)
        except Exception:
            logger.exception("could not send the fallback reply to %s", message.sender_id)
        try:
            await undo_unanswered_turn(message, text)
        except Exception:
            logger.exception("could not rewind the unanswered turn of %s", message.sender_id)

    return handle
