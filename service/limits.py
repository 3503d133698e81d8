"""Request-body limit for the web service: bodies larger than ``max_bytes`` get 413 before any route
reads them (a declared Content-Length is checked first; a chunked body is counted as it arrives)."""

from __future__ import annotations

import json


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Pure ASGI middleware (no buffering of the body)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"För stor förfrågan: högst {self.max_bytes} byte."},
                          ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    return await self._refuse(send)
        received = 0
        started = refused = False

        async def counted_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not started and not refused:  # answer now: the route may turn the error into a 400
                        refused = True
                        await self._refuse(send)
                    raise _TooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            if refused:  # the 413 has been sent; whatever the route answers after it is dropped
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            pass
