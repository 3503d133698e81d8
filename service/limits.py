"""ASGI middleware of the web service:

- ``BodyLimit``: bodies larger than ``max_bytes`` get 413 before any route reads them (a declared
  Content-Length is checked first; a chunked body is counted as it arrives);
- ``SecurityHeaders``: every HTML page gets a Content-Security-Policy (scripts, styles and
  connections from this service and the web chat's socket only; no inline scripts, no plugins).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

SWAGGER_CDN = "https://cdn.jsdelivr.net"


def content_security_policy(socket_url: str) -> str:
    """The policy of the service's HTML pages; the web chat may connect to Rasa's socket.io address."""
    parts = urlsplit(socket_url)
    connect = ["'self'"]
    if parts.scheme in ("http", "https") and parts.netloc:
        connect += [f"{parts.scheme}://{parts.netloc}", f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"]
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {' '.join(connect)}; object-src 'none'; base-uri 'none'; form-action 'self'")


class SecurityHeaders:
    """Adds a Content-Security-Policy to HTML responses that do not set their own."""

    def __init__(self, app, policy: str):
        self.app = app
        self.policy = policy.encode()
        # FastAPI's /docs page (only with ASSISTANT_API_DOCS=true) runs an inline script and Swagger UI from its CDN.
        self.docs_policy = (f"default-src 'self'; script-src 'self' 'unsafe-inline' {SWAGGER_CDN}; style-src 'self' "
                            f"{SWAGGER_CDN}; img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
                            "object-src 'none'; base-uri 'none'").encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        policy = self.docs_policy if scope.get("path", "").startswith("/docs") else self.policy

        async def with_policy(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                is_html = any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers)
                if is_html and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", policy))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_policy)


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
