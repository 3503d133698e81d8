"""Slack for the assistant: Rasa's Slack channel with a configurable API base URL (GovSlack, tests)
and answers rendered with their citations as one Block Kit message.

Loaded by Rasa (its own environment), configured in the credentials file that `make run` writes
when ASSISTANT_SLACK_BOT_TOKEN and ASSISTANT_SLACK_SIGNING_SECRET are set:

    bot.connectors.slack.CitingSlackInput:
      slack_token: xoxb-…
      slack_signing_secret: …
      api_base_url: https://slack.com/api/

Requests without a valid X-Slack-Signature are refused by Rasa's SlackInput (HTTP 400). Slack
delivers an event again when it thinks the first delivery failed (X-Slack-Retry-Num); an event whose
``event_id`` (or an interaction whose ``trigger_id``) was seen in the last hour is acknowledged with
200 and ``X-Slack-No-Retry: 1`` and not processed again.

Conversations are `slack:<team id>:<user>` (Rasa's id for the user, channel or thread), so no other
channel can address them. A message longer than `max_message_chars` (or not text), or one over the
sender's `messages_per_minute`, gets a reply saying so and never reaches the NLU, nor Rasa's
mention-stripping regexes. When Rasa sends nothing (action server down or timed out) the fallback
message is sent instead (bot/connectors/fallback.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Text

from rasa.core.channels.channel import OutputChannel
from rasa.core.channels.slack import SlackBot, SlackInput
from sanic import response
from sanic.request import Request
from slack_sdk.web.async_client import AsyncWebClient

from assistant import guard
from assistant.shared_limits import rate_limiter
from assistant.payload import body_of, citation_place, coverage_label, coverage_of, is_answer
from bot.connectors.admission import admitted
from bot.connectors.fallback import never_silent

logger = logging.getLogger(__name__)

SLACK_API = "https://slack.com/api/"
SECTION_LIMIT = 2900  # Slack allows 3000 characters in a section's text
CONTEXT_LIMIT = 1900


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as markup; user-visible text must not become links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def citation_blocks(custom: Dict[Text, Any]) -> List[Dict[Text, Any]]:
    """Block Kit: the answer as a section, then one compact context line per citation."""
    text = _escape(body_of(custom))
    language = str(custom.get("language") or "sv")
    blocks: List[Dict[Text, Any]] = []
    label = coverage_label(coverage_of(custom), language)
    if label:  # partial and none look different from a full answer
        mark = ":warning:" if coverage_of(custom) == "partial" else ":no_entry_sign:"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"{mark} *{_escape(label)}*"}]})
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SECTION_LIMIT)}})
    citations = custom.get("citations") or []
    if citations:
        blocks.append({"type": "divider"})
    for c in citations:
        where = citation_place(c, language)
        quote = c.get("quote") or ""
        line = f"*[{c.get('number', '')}]* {_escape(where)}" + (f"\n_”{_escape(_clip(quote, 600))}”_" if quote else "")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(line, CONTEXT_LIMIT)}]})
    return blocks


class SeenEvents:
    """Event ids seen in the last ``ttl`` seconds (at most ``max_entries``, the oldest dropped first)."""

    def __init__(self, ttl: float = 3600.0, max_entries: int = 10_000) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._seen: "OrderedDict[Text, float]" = OrderedDict()

    def first_time(self, key: Text, now: Optional[float] = None) -> bool:
        """True the first time ``key`` is seen within ``ttl`` (and remembers it)."""
        now = time.monotonic() if now is None else now
        while self._seen and (next(iter(self._seen.values())) <= now - self.ttl
                              or len(self._seen) >= self.max_entries):
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


def event_key(request: Request) -> Optional[Text]:
    """What identifies one Slack delivery across retries: the event's id, or an interaction's trigger id."""
    try:
        if request.headers.get("content-type") == "application/json":
            body = request.json or {}
            key = body.get("event_id")
            return f"{body.get('team_id') or '-'}:event:{key}" if key else None
        payload = json.loads(request.form["payload"][0])
        key = payload.get("trigger_id") or (payload.get("actions") or [{}])[0].get("action_ts")
        return f"{(payload.get('team') or {}).get('id') or '-'}:interaction:{key}" if key else None
    except Exception:  # a shape Slack does not send: nothing to de-duplicate on
        return None


class CitingSlackBot(SlackBot):
    def __init__(self, token: Text, slack_channel: Optional[Text] = None, thread_id: Optional[Text] = None,
                 proxy: Optional[Text] = None, api_base_url: Text = SLACK_API) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        self.client = AsyncWebClient(token, proxy=proxy, base_url=api_base_url)

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        custom = message.get("custom")
        if is_answer(custom):
            # One message: the answer and its sources together (the text repeats in `custom`).
            channel = self.slack_channel or recipient_id
            await self._post_message(channel=channel, as_user=True, text=_clip(body_of(custom),
                                                                                SECTION_LIMIT),
                                     blocks=citation_blocks(custom))
            return
        await super().send_response(recipient_id, message)


class CitingSlackInput(SlackInput):
    @classmethod
    def name(cls) -> Text:
        return "slack"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "CitingSlackInput":
        if not credentials:
            cls.raise_missing_credentials_exception()
        channel = super().from_credentials(credentials)
        channel.api_base_url = credentials.get("api_base_url") or SLACK_API
        channel.max_message_chars = int(credentials.get("max_message_chars") or guard.MAX_MESSAGE_CHARS)
        channel.max_metadata_bytes = int(credentials.get("max_metadata_bytes") or guard.MAX_METADATA_BYTES)
        channel.limiter = rate_limiter(int(credentials.get("messages_per_minute", guard.MESSAGES_PER_MINUTE)),
                                       "slack-sender", credentials.get("redis_url") or None)
        return channel

    def blueprint(self, on_new_message: Any) -> Any:
        return super().blueprint(never_silent(admitted(on_new_message)))

    def _limit(self) -> int:
        return getattr(self, "max_message_chars", guard.MAX_MESSAGE_CHARS)

    def _sanitize_user_message(self, text: Any, uids_to_remove: Optional[List[Text]]) -> Any:
        # Rasa's version runs regexes with lazy quantifiers over the whole text: an over-long (or
        # non-text) message is passed on untouched and refused in process_message before any of that.
        if not isinstance(text, str) or len(text) > self._limit():
            return text
        return SlackInput._sanitize_user_message(text, uids_to_remove)

    @staticmethod
    def _team(request: Request) -> Text:
        try:
            if request.headers.get("content-type") == "application/json":
                return str((request.json or {}).get("team_id") or "")
            payload = json.loads(request.form["payload"][0])
            return str((payload.get("team") or {}).get("id") or "")
        except Exception:  # a shape Slack does not send: no team
            return ""

    async def process_message(self, request: Request, on_new_message: Any, text: Any, sender_id: Optional[Text],
                              metadata: Optional[Dict]) -> Any:
        if not sender_id:
            return response.text("")
        # Runs after Rasa has checked the signature: only authentic deliveries are remembered.
        key = event_key(request)
        seen = self.__dict__.setdefault("_seen_events", SeenEvents())
        if key and not seen.first_time(key):
            logger.info("Slack delivery %s already processed (retry %s, %s): ignored", key,
                        request.headers.get("x-slack-retry-num"), request.headers.get("x-slack-retry-reason"))
            return response.text("", headers={"X-Slack-No-Retry": "1"})
        sender_id = guard.sender(guard.SLACK, self._team(request) or "-", sender_id)
        refusal = guard.rate_refusal(getattr(self, "limiter", None), sender_id, text) or \
            guard.check_message(text, self._limit())
        if refusal:
            logger.info("Slack message refused (%s) for %s", refusal.reason, sender_id)
            metadata = metadata or {}
            out = self.get_output_channel(metadata.get("out_channel"),
                                          metadata.get("thread_id") if self.use_threads else None)
            task = asyncio.create_task(self._refuse(out, metadata.get("out_channel") or "", refusal.text))
            self._background_tasks.add(task)
            task.add_done_callback(self._background_tasks.discard)
            return response.text("")
        metadata = guard.cap_metadata(metadata, getattr(self, "max_metadata_bytes", guard.MAX_METADATA_BYTES))
        return await super().process_message(request, on_new_message, text, sender_id, metadata)

    @staticmethod
    async def _refuse(out: OutputChannel, recipient: Text, text: Text) -> None:
        try:
            await out.send_text_message(recipient, text)
        except Exception:
            logger.exception("could not send a refusal to Slack")

    def get_output_channel(self, channel: Optional[Text] = None, thread_id: Optional[Text] = None) -> OutputChannel:
        return CitingSlackBot(self.slack_token, channel or self.slack_channel, thread_id, self.proxy,
                              getattr(self, "api_base_url", SLACK_API))
