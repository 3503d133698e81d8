"""ASGI middleware of the web service:

- ``BodyLimit``: bodies larger than ``max_bytes`` get 413 before any route reads them (a declared
  Content-Length is checked first; a chunked body is counted as it arrives);
- ``SecurityHeaders``: every HTML page gets a Content-Security-Policy (scripts, styles and
  connections from this service and the web chat's socket only; no inline scripts, no plugins) unless
  it sets a stricter one itself (the inbox, /docs), and may be framed only where it must be: the chat
  page (``/``), which embed.js puts in an iframe on the host's site; every other page refuses frames.
  Every response gets ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin`` (not
  ``no-referrer``: with it browsers send ``Origin: null`` on the pages' own form POSTs, which the inbox's
  Origin check refuses, so staff could not log in); HTML
  pages also ``Cross-Origin-Opener-Policy: same-origin`` and a Permissions-Policy with no camera,
  microphone or location.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

FRAMEABLE = frozenset(("/",))  # the chat page: embed.js shows it in an iframe on other sites
ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"))
HTML_ONLY = ((b"cross-origin-opener-policy", b"same-origin"),
             (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"))


def content_security_policy(socket_url: str) -> str:
    """The policy of the service's HTML pages; the web chat may connect to Rasa's socket.io address."""
    parts = urlsplit(socket_url)
    connect = ["'self'"]
    if parts.scheme in ("http", "https") and parts.netloc:
        connect += [f"{parts.scheme}://{parts.netloc}", f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"]
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {' '.join(connect)}; object-src 'none'; base-uri 'none'; form-action 'self'")


class SecurityHeaders:
    """Adds the security headers above to every response (never replacing one a route set itself)."""

    def __init__(self, app, policy: str):
        self.app = app
        self.policy = policy.encode()
        self.unframed_policy = (policy + "; frame-ancestors 'none'").encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        frameable = scope.get("path", "") in FRAMEABLE

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                is_html = any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers)
                add = list(ALWAYS)
                if is_html:
                    add += HTML_ONLY
                    add.append((b"content-security-policy", self.policy if frameable else self.unframed_policy))
                    if not frameable:
                        add.append((b"x-frame-options", b"DENY"))
                headers += [(name, value) for name, value in add if name not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


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
