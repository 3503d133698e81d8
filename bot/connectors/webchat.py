"""Website chat: Rasa's socket.io channel with each answer and its citations in one event.

Rasa 3.6's SocketIOOutput sends a message's text and its `custom` payload as separate events and
passes the custom dict as keyword arguments to `emit`, which breaks for payloads like ours. Here
every bot message is one `bot_uttered` event: {"text", "buttons"?, "custom"?}. Sessions persist
(the page keeps its session id), so the conversation survives reloads and staff replies can find it.
"""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from assistant.payload import is_answer

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
                   credentials.get("cors_allowed_origins", "*"))

    def __init__(self, user_message_evt: Text = "user_uttered", bot_message_evt: Text = "bot_uttered",
                 socketio_path: Text = "/socket.io", cors_allowed_origins: Any = "*") -> None:
        self.user_message_evt = user_message_evt
        self.bot_message_evt = bot_message_evt
        self.socketio_path = socketio_path
        self.cors_allowed_origins = cors_allowed_origins
        self.sio: Optional[AsyncServer] = None

    def get_output_channel(self) -> Optional[OutputChannel]:
        return WebChatOutput(self.sio, self.bot_message_evt) if self.sio else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=self.cors_allowed_origins)
        webhook = SocketBlueprint(sio, self.socketio_path, "webchat_webhook", __name__)
        self.sio = sio

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("session_request")
        async def session_request(sid: Text, data: Optional[Dict]) -> None:
            session_id = (data or {}).get("session_id") or uuid.uuid4().hex
            joined = sio.enter_room(sid, session_id)  # a coroutine in newer python-socketio releases
            if inspect.isawaitable(joined):
                await joined
            await sio.emit("session_confirm", session_id, room=sid)

        @sio.on(self.user_message_evt)
        async def handle_message(sid: Text, data: Dict) -> None:
            session_id = (data or {}).get("session_id")
            text = (data or {}).get("message")
            if not session_id or not isinstance(text, str) or not text.strip():
                return
            metadata = data.get("customData") or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {}
            await on_new_message(UserMessage(text[:2000], WebChatOutput(sio, self.bot_message_evt), session_id,
                                             input_channel=self.name(), metadata=metadata))

        return webhook
