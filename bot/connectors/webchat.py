"""Website chat: Rasa's socket.io channel with each answer and its citations in one event, and
sessions the server issues.

Rasa 3.6's SocketIOOutput sends a message's text and its `custom` payload as separate events and
passes the custom dict as keyword arguments to `emit`, which breaks for payloads like ours. Here
every bot message is one `bot_uttered` event: {"text", "buttons"?, "custom"?}.

Identity: the page asks for a session (`session_request {"token"}`); a missing, forged or expired
token gets a new one. The server answers `session_confirm {"session_id", "token", "expires_at"}`
(signed with ASSISTANT_WEBCHAT_SECRET, see assistant/guard.py), keeps the session with the socket
(`save_session`) and puts the socket in the room `web:<id>`, which is also the conversation's sender
id. `user_uttered` reads the session only from the socket: a session id in the message is ignored.
The token survives reloads (the page keeps it), so the conversation does too and staff replies
find it; each session_request renews its expiry.

Several Rasa replicas: with `redis_url` (credentials, from ASSISTANT_REDIS_URL) the socket.io server
uses python-socketio's AsyncRedisManager, so an event emitted to a room on one replica (an answer, or
anything Rasa's HTTP API sends to the `socketio` output channel) reaches the socket wherever it is
held. The engine.io session itself (long-polling) lives in one process: the balancer keeps a
browser on one replica (sticky, see service/cluster.py).

Limits before any work: messages longer than `max_message_chars`, empty, not text or with invalid
unicode get a clear reply and never reach Rasa; `customData` over `max_metadata_bytes` is dropped, and
of a smaller one only `feedback_for` is kept (guard.allowed_metadata); a
session over `messages_per_minute`, or a client address over `messages_per_address_minute` (all its
sessions together), is told to wait; an address may start `sessions_per_address_hour` new sessions an
hour (a known token is always renewed). The address is the socket's peer, or X-Forwarded-For when the
peer is one of `trusted_proxies` (assistant/guard.py, `client_address`). When Rasa sends nothing
(action server down or timed out) the fallback message is sent instead (bot/connectors/fallback.py).
"""


from __future__ import annotations

import inspect
import logging
import time
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from assistant import guard
from assistant.payload import is_answer
from assistant.shared_limits import rate_limiter
from bot.connectors.admission import admitted
from bot.connectors.fallback import never_silent

logger = logging.getLogger(__name__)


class WebChatOutput(OutputChannel):
    @classmethod
    def name(cls) -> Text:
        return "socketio"

    def __init__(self, sio: AsyncServer, bot_message_evt: Text) -> None:
        self.sio = sio
        self.bot_message_evt = bot_message_evt

    async def _emit(self, room: Text, event: Dict[Text, Any]) -> None:
        await self.sio.emit(self.bot_message_evt, event, room=room)

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        event: Dict[Text, Any] = {}
        custom = message.get("custom")
        if is_answer(custom):
            event["text"] = custom.get("text") or message.get("text") or ""
            event["custom"] = custom
        elif message.get("text"):
            event["text"] = message["text"]
        elif custom is not None:
            event["custom"] = custom
        if message.get("buttons"):
            event["buttons"] = [{"title": b.get("title"), "payload": b.get("payload")} for b in message["buttons"]]
        if event:
            await self._emit(recipient_id, event)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._emit(recipient_id, {"text": text})


def allowed_origins(value: Any) -> Optional[Any]:
    """The browser origins that may open the socket: a list, or a comma-separated string; unset or
    empty = the socket's own origin only (never "everyone" by default; "*" only when written out)."""
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    origins = [o.strip().rstrip("/") for o in str(value or "").split(",") if o.strip()]
    if not origins:
        return None
    return "*" if origins == ["*"] else origins


class WebChatInput(InputChannel):
    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WebChatInput":
        credentials = credentials or {}
        return cls(credentials.get("user_message_evt", "user_uttered"),
                   credentials.get("bot_message_evt", "bot_uttered"),
                   credentials.get("socketio_path", "/socket.io"),
                   allowed_origins(credentials.get("cors_allowed_origins")),
                   session_secret=credentials.get("session_secret") or "",
                   session_days=float(credentials.get("session_days") or guard.WEBCHAT_SESSION_DAYS),
                   max_message_chars=int(credentials.get("max_message_chars") or guard.MAX_MESSAGE_CHARS),
                   max_metadata_bytes=int(credentials.get("max_metadata_bytes") or guard.MAX_METADATA_BYTES),
                   max_body_bytes=int(credentials.get("max_body_bytes") or 1_000_000),
                   messages_per_minute=int(credentials.get("messages_per_minute", guard.MESSAGES_PER_MINUTE)),
                   messages_per_address_minute=int(credentials.get("messages_per_address_minute",
                                                                   guard.MESSAGES_PER_ADDRESS_MINUTE)),
                   sessions_per_address_hour=int(credentials.get("sessions_per_address_hour",
                                                                 guard.SESSIONS_PER_ADDRESS_HOUR)),
                   trusted_proxies=credentials.get("trusted_proxies") or "",
                   redis_url=credentials.get("redis_url") or None)

    def __init__(self, user_message_evt: Text = "user_uttered", bot_message_evt: Text = "bot_uttered",
                 socketio_path: Text = "/socket.io", cors_allowed_origins: Any = None, *, session_secret: Text = "",
                 session_days: float = guard.WEBCHAT_SESSION_DAYS, max_message_chars: int = guard.MAX_MESSAGE_CHARS,
                 max_metadata_bytes: int = guard.MAX_METADATA_BYTES, max_body_bytes: int = 1_000_000,
                 messages_per_minute: int = guard.MESSAGES_PER_MINUTE,
                 messages_per_address_minute: int = guard.MESSAGES_PER_ADDRESS_MINUTE,
                 sessions_per_address_hour: int = guard.SESSIONS_PER_ADDRESS_HOUR, trusted_proxies: Any = "",
                 redis_url: Optional[Text] = None) -> None:
        if redis_url and (redis_url.startswith("${") or not redis_url.startswith(("redis://", "rediss://"))):
            raise ValueError("the web chat's redis_url must be a redis:// URL (ASSISTANT_REDIS_URL)")
        if not session_secret or session_secret.startswith("${"):
            raise ValueError("the web chat needs a session secret: set ASSISTANT_WEBCHAT_SECRET "
                             "(python -m service.stack generates one per run when it is unset)")
        guard.issue_session(session_secret)  # fails now, not at the first visitor, when the secret is too short
        self.user_message_evt = user_message_evt
        self.bot_message_evt = bot_message_evt
        self.socketio_path = socketio_path
        self.cors_allowed_origins = cors_allowed_origins
        self.session_secret = session_secret
        self.session_days = session_days
        self.max_message_chars = max_message_chars
        self.max_metadata_bytes = max_metadata_bytes
        self.max_body_bytes = max_body_bytes
        self.redis_url = redis_url
        # With Redis (several replicas) the limits are counted there, for every replica together.
        self.limiter = rate_limiter(messages_per_minute, "webchat-sender", redis_url)
        self.address_limiter = rate_limiter(messages_per_address_minute, "webchat-address", redis_url)
        self.session_limiter = rate_limiter(sessions_per_address_hour, "webchat-sessions", redis_url, window=3600.0)
        self.trusted_proxies = guard.trusted_networks(trusted_proxies)
        self.sio: Optional[AsyncServer] = None

    def get_output_channel(self) -> Optional[OutputChannel]:
        return WebChatOutput(self.sio, self.bot_message_evt) if self.sio else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        manager = None
        if self.redis_url:
            from socketio import AsyncRedisManager

            manager = AsyncRedisManager(self.redis_url, channel="assistant-webchat")
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=self.cors_allowed_origins,
                          max_http_buffer_size=self.max_body_bytes, client_manager=manager)
        webhook = SocketBlueprint(sio, self.socketio_path, "webchat_webhook", __name__)
        self.sio = sio
        on_new_message = never_silent(admitted(on_new_message))

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        async def reply(sid: Text, text: Text) -> None:
            await sio.emit(self.bot_message_evt, {"text": text}, room=sid)

        def address(sid: Text) -> str:
            """The client's address: the socket's peer, or X-Forwarded-For behind a trusted proxy."""
            environ = sio.get_environ(sid) or {}
            request = environ.get("sanic.request")  # engine.io's REMOTE_ADDR is always 127.0.0.1 under Sanic
            peer = getattr(request, "ip", None) if request is not None else None
            return guard.client_address(peer, environ.get("HTTP_X_FORWARDED_FOR"), self.trusted_proxies)

        @sio.on("session_request")
        async def session_request(sid: Text, data: Any) -> None:
            token = data.get("token") if isinstance(data, dict) else None
            known = guard.verify_session(token, self.session_secret)
            if known is None and not self.session_limiter.allow(guard.address_key(address(sid))):
                # A new session is free for the client, not for its address: past the hourly number the
                # page is told (in its language) and gets none; a known session is still renewed.
                lang = "en" if isinstance(data, dict) and data.get("lang") == "en" else "sv"
                logger.info("web chat session refused for %s: too many new sessions", address(sid))
                await reply(sid, guard.TOO_MANY_SESSIONS[lang])
                return
            # A known session is renewed (same id, new expiry); anything else starts a new one.
            session = guard.issue_session(self.session_secret, self.session_days,
                                          session_id=known.session_id if known else None)
            previous = (await sio.get_session(sid)).get("sender_id")
            if previous and previous != session.sender_id:
                left = sio.leave_room(sid, previous)
                if inspect.isawaitable(left):
                    await left
            await sio.save_session(sid, {"sender_id": session.sender_id, "expires_at": session.expires_at})
            joined = sio.enter_room(sid, session.sender_id)  # a coroutine in newer python-socketio releases
            if inspect.isawaitable(joined):
                await joined
            await sio.emit("session_confirm", {"session_id": session.session_id, "token": session.token,
                                               "expires_at": session.expires_at}, room=sid)

        @sio.on(self.user_message_evt)
        async def handle_message(sid: Text, data: Any) -> None:
            # The conversation is the socket's own session; a session id sent with the message is ignored.
            session = await sio.get_session(sid)
            sender_id = session.get("sender_id")
            if not sender_id or session.get("expires_at", 0) <= time.time():
                await sio.emit("session_required", {}, room=sid)
                await reply(sid, guard.SESSION_REQUIRED["sv"])
                return
            data = data if isinstance(data, dict) else {}
            text = data.get("message")
            refusal = (guard.rate_refusal(self.limiter, sender_id, text, self.address_limiter, address(sid))
                       or guard.check_message(text, self.max_message_chars))
            if refusal:
                logger.info("web chat message refused (%s) for %s", refusal.reason, sender_id)
                await reply(sid, refusal.text)
                return
            metadata = guard.allowed_metadata(data.get("customData"), self.max_metadata_bytes)
            # Set here, after the allow-list: a client cannot choose its own tag.
            metadata[guard.CLIENT_TAG] = guard.client_tag(self.session_secret, address(sid))
            await on_new_message(UserMessage(text, WebChatOutput(sio, self.bot_message_evt), sender_id,
                                             input_channel=self.name(), metadata=metadata))

        return webhook
