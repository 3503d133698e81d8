"""The REST channel for server-to-server use, at Rasa's usual address:

    POST /webhooks/rest/webhook   {"sender": "…", "message": "…", "metadata"?: {…}}
                                  → [{"recipient_id", "text", "buttons"?, "custom"?}, …]

It replaces Rasa's plain `rest:` channel (same path, same reply format) and adds:

- **A credential.** With a token configured (`token`, from ASSISTANT_REST_TOKEN) every request needs
  `Authorization: Bearer <token>`. Without one, only requests from the same machine are answered
  (peer 127.0.0.1/::1, no proxy headers), and only when `allow_loopback_without_token` is set, which
  `python -m service.stack` does only when Rasa listens on a loopback address. Everything else: 401.
- **Its own conversations.** The conversation id is `rest:<sender>`, so a REST client can never
  continue a web chat, Slack or Teams conversation. A request without a sender is refused (400): there
  is no shared "default" conversation.
- **Limits before any work.** A message that is not text, is empty or holds invalid unicode gets 400
  with a message; a message longer than `max_message_chars` gets a normal reply saying so (in the
  user's language) and never reaches the NLU; metadata over `max_metadata_bytes` is dropped, and of a
  smaller one only `feedback_for` is kept (guard.allowed_metadata). A sender
  over `messages_per_minute`, or a client address over `messages_per_address_minute` (all its senders
  together; the address is the peer, or X-Forwarded-For behind one of `trusted_proxies`), gets 429
  (Retry-After) with a reply telling it to wait.
- **Admission control.** When the messages in progress in this Rasa process (all channels together)
  would keep a new one waiting past `ASSISTANT_MAX_EXPECTED_WAIT_SECONDS`, or past
  `ASSISTANT_MAX_MESSAGES_IN_FLIGHT` in progress, it gets 503 (Retry-After) at once with "Många frågar
  just nu – försök igen om en stund" instead of a long wait (bot/connectors/admission.py).
- **Never an empty reply.** When Rasa sends nothing (action server down or timed out) the reply is
  the fallback message (bot/connectors/fallback.py), not `[]`.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant import guard
from assistant.shared_limits import rate_limiter
from bot.connectors import admission
from bot.connectors.fallback import never_silent

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 128


class GuardedRestInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "GuardedRestInput":
        credentials = credentials or {}
        return cls(token=credentials.get("token") or None,
                   allow_loopback_without_token=bool(credentials.get("allow_loopback_without_token", False)),
                   max_message_chars=int(credentials.get("max_message_chars") or guard.MAX_MESSAGE_CHARS),
                   max_metadata_bytes=int(credentials.get("max_metadata_bytes") or guard.MAX_METADATA_BYTES),
                   messages_per_minute=int(credentials.get("messages_per_minute", guard.MESSAGES_PER_MINUTE)),
                   messages_per_address_minute=int(credentials.get("messages_per_address_minute",
                                                                   guard.MESSAGES_PER_ADDRESS_MINUTE)),
                   trusted_proxies=credentials.get("trusted_proxies") or "",
                   redis_url=credentials.get("redis_url") or None)

    def __init__(self, token: Optional[Text] = None, allow_loopback_without_token: bool = False,
                 max_message_chars: int = guard.MAX_MESSAGE_CHARS,
                 max_metadata_bytes: int = guard.MAX_METADATA_BYTES,
                 messages_per_minute: int = guard.MESSAGES_PER_MINUTE,
                 messages_per_address_minute: int = guard.MESSAGES_PER_ADDRESS_MINUTE,
                 trusted_proxies: Any = "", redis_url: Optional[Text] = None) -> None:
        if token is not None and (len(token) < 16 or token.startswith("${")):
            raise ValueError("the REST token (ASSISTANT_REST_TOKEN) must be at least 16 characters")
        self.token = token
        self.allow_loopback_without_token = allow_loopback_without_token
        self.max_message_chars = max_message_chars
        self.max_metadata_bytes = max_metadata_bytes
        # With Redis (several replicas) the limits are counted there, for every replica together.
        self.limiter = rate_limiter(messages_per_minute, "rest-sender", redis_url)
        self.address_limiter = rate_limiter(messages_per_address_minute, "rest-address", redis_url)
        self.trusted_proxies = guard.trusted_networks(trusted_proxies)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("guarded_rest_webhook", __name__)
        on_new_message = never_silent(on_new_message)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            refused = guard.rest_access_refused(self.token, request.headers.get("authorization"),
                                                self.allow_loopback_without_token, request.ip, request.headers)
            if refused:
                return response.json({"error": refused}, status=HTTPStatus.UNAUTHORIZED,
                                     headers={"WWW-Authenticate": "Bearer"})
            try:
                body = request.json
            except Exception:  # malformed JSON
                body = None
            if not isinstance(body, dict):
                return bad_request("Skicka ett JSON-objekt: {\"sender\": \"…\", \"message\": \"…\"}.")
            sender = body.get("sender")
            if (not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS
                    or guard.check_message(sender, MAX_SENDER_CHARS)):
                return bad_request(f"Fältet \"sender\" saknas eller är ogiltigt: ange ett id för samtalet "
                                   f"(text, 1–{MAX_SENDER_CHARS} tecken). Utan det kan samtal inte hållas isär.")
            sender_id = guard.sender(guard.REST, sender)
            text = body.get("message")
            address = guard.client_address(request.ip, ",".join(request.headers.getall("x-forwarded-for", [])),
                                           self.trusted_proxies)
            limited = guard.rate_refusal(self.limiter, sender_id, text, self.address_limiter, address)
            if limited:
                logger.info("REST message refused (%s) for %s from %s", limited.reason, sender_id, address)
                return response.json([{"recipient_id": sender_id, "text": limited.text}],
                                     status=HTTPStatus.TOO_MANY_REQUESTS, headers={"Retry-After": "60"})
            refusal = guard.check_message(text, self.max_message_chars)
            if refusal and refusal.reason == "too_long":
                logger.info("REST message refused (too long, %d characters) for %s", len(text), sender_id)
                return response.json([{"recipient_id": sender_id, "text": refusal.text}])
            if refusal:
                return bad_request(refusal.text)
            metadata = guard.allowed_metadata(body.get("metadata"), self.max_metadata_bytes)
            if not admission.GATE.try_enter():
                logger.warning("busy: %d messages in progress (expected wait %.1f s), refused one of %s",
                               admission.GATE.in_flight, admission.GATE.expected_wait(), sender_id)
                return response.json([{"recipient_id": sender_id, "text": admission.busy_text(text)}],
                                     status=HTTPStatus.SERVICE_UNAVAILABLE,
                                     headers={"Retry-After": str(admission.RETRY_AFTER_SECONDS)})
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(text, collector, sender_id, input_channel=self.name(),
                                                 metadata=metadata))
            except Exception:
                logger.exception("REST message failed for %s", sender_id)
            finally:
                admission.GATE.leave()
            return response.json(collector.messages)

        return webhook


def bad_request(message: Text) -> HTTPResponse:
    return response.json({"error": message}, status=HTTPStatus.BAD_REQUEST)
