"""Staff replies from the inbox, delivered to Slack and Teams users in their own channel.

    POST /webhooks/staff_reply/deliver   {"sender_id": "slack:T1:U123" | "teams:29:…", "text", "author"}
         Authorization: Bearer <HS256 JWT signed with ASSISTANT_RASA_API_TOKEN,
                                 {"user": {"username": <sender_id>, "role": "staff_reply"}, "exp"}>

The knowledge service calls this when staff answer a request (service/staff.py); web chat users get
replies through the web service instead (they poll it). The reply goes out through the same output
channels that send the bot's own messages (bot/connectors/slack.py, teams.py), addressed from the
conversation's own record: the Slack channel (and thread) and the Teams conversation reference of the
user's latest message in the tracker store, never from the request. A token is valid for one
conversation and for this role only (the inbox's transcript tokens, role "user", are refused), for a
minute.

Answers: 200 {"delivered": true, "channel"}; 401 bad token; 404 no such conversation, or none of
Slack/Teams; 422 bad body; 502 the platform refused or could not be reached; 503 that channel is not
configured here.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Text

import jwt
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant import texts

logger = logging.getLogger(__name__)

ROLE = "staff_reply"
SECRET_VARIABLE = "ASSISTANT_RASA_API_TOKEN"
MAX_TEXT = 4000
MAX_AUTHOR = 100
CHANNELS = {"slack": "slack", "teams": "botframework"}  # sender id prefix -> Rasa input channel name


def check_token(authorization: Optional[Text], secret: Text, sender_id: Text) -> Optional[Text]:
    """None when ``authorization`` is a valid delivery token for ``sender_id``, else why not."""
    if not secret:
        return "delivery is off: no secret configured"
    if not authorization or not authorization.startswith("Bearer "):
        return "no bearer token"
    try:
        claims = jwt.decode(authorization[7:].strip(), secret, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.PyJWTError as exc:
        return f"invalid token: {exc}"
    user = claims.get("user") if isinstance(claims.get("user"), dict) else {}
    if user.get("role") != ROLE or user.get("username") != sender_id:
        return "token not valid for this conversation"
    return None


def latest_address(events: Any, channel: Text) -> Optional[Dict[Text, Any]]:
    """The metadata of the conversation's latest user message that came through ``channel``."""
    for event in reversed(list(events or [])):
        data = event.as_dict() if hasattr(event, "as_dict") else event
        if data.get("event") == "user" and data.get("input_channel") == channel:
            metadata = data.get("metadata")
            return metadata if isinstance(metadata, dict) else {}
    return None


async def deliver_slack(slack: Any, sender_id: Text, metadata: Dict[Text, Any], text: Text) -> None:
    from bot.connectors.slack import _escape

    out_channel = metadata.get("out_channel")
    if not isinstance(out_channel, str) or not out_channel:
        raise LookupError("the conversation has no Slack channel")
    thread = metadata.get("thread_id") if getattr(slack, "use_threads", False) else None
    out = slack.get_output_channel(out_channel, thread)
    await out.send_text_message(out_channel, _escape(text))  # SlackApiError when Slack refuses it


async def deliver_teams(teams: Any, sender_id: Text, metadata: Dict[Text, Any], text: Text) -> None:
    from bot.connectors.teams import TeamsOutput, service_url_allowed

    reference = metadata.get("teams") if isinstance(metadata.get("teams"), dict) else {}
    service_url, conversation = reference.get("service_url"), reference.get("conversation")
    if not isinstance(conversation, dict) or not conversation.get("id"):
        raise LookupError("the conversation has no Teams conversation reference")
    if not service_url_allowed(service_url, teams.service_url_hosts):  # checked again: hosts may have changed
        raise LookupError("the conversation's service URL is not allowed")
    out = TeamsOutput(teams.tokens, conversation, reference.get("bot") or {}, service_url)
    if not await out.deliver_text(sender_id, text):
        raise RuntimeError("the Bot Framework refused the reply")


class StaffReplyInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "staff_reply"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "StaffReplyInput":
        credentials = credentials or {}
        return cls(credentials.get("secret") or os.environ.get(SECRET_VARIABLE, ""))

    def __init__(self, secret: Text = "") -> None:
        self.secret = secret

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("staff_reply", __name__)

        @hook.post("/deliver")
        async def deliver(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # malformed JSON
                body = None
            if not isinstance(body, dict):
                return response.json({"detail": "a JSON object is expected"}, status=422)
            sender_id, text, author = body.get("sender_id"), body.get("text"), body.get("author")
            if not (isinstance(sender_id, str) and 0 < len(sender_id) <= 300 and isinstance(text, str)
                    and 0 < len(text.strip()) <= MAX_TEXT and isinstance(author, str) and 0 < len(author) <= MAX_AUTHOR):
                return response.json({"detail": "sender_id, text and author are required"}, status=422)
            refused = check_token(request.headers.get("authorization"), self.secret, sender_id)
            if refused:
                return response.json({"detail": refused}, status=401)
            prefix = sender_id.split(":", 1)[0]
            channel_name = CHANNELS.get(prefix)
            if channel_name is None:
                return response.json({"detail": "only Slack and Teams conversations are delivered here"}, status=404)
            channel = next((c for c in getattr(request.app.ctx, "input_channels", None) or []
                            if c.name() == channel_name), None)
            if channel is None:
                return response.json({"detail": f"the {prefix} channel is not configured"}, status=503)
            agent = getattr(request.app.ctx, "agent", None)
            tracker = await agent.tracker_store.retrieve(sender_id) if agent is not None else None
            metadata = latest_address(tracker.events, channel_name) if tracker is not None else None
            if metadata is None:
                return response.json({"detail": "no such conversation"}, status=404)
            language = "en" if tracker.get_slot("language") == "en" else "sv"
            message = texts.staff_reply(language, author.strip(), text.strip())
            try:
                if prefix == "slack":
                    await deliver_slack(channel, sender_id, metadata, message)
                else:
                    await deliver_teams(channel, sender_id, metadata, message)
            except LookupError as exc:
                return response.json({"detail": str(exc)}, status=404)
            except Exception as exc:  # noqa: BLE001 - the platform refused or was unreachable
                logger.warning("staff reply to %s not delivered: %s", sender_id, exc)
                return response.json({"detail": f"{prefix} did not accept the reply"}, status=502)
            logger.info("staff reply delivered to %s", sender_id)
            return response.json({"delivered": True, "channel": prefix})

        return hook
