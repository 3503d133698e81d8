"""The website chat: the page, the one-line embed script, a paragraph view, and staff replies.

    GET /                                        the chat page (talks to Rasa's socket.io channel)
    GET /embed.js                                <script src=".../embed.js"></script> puts the chat on any site
    GET /static/...                              the page's files (web/: css, js, images; not node_modules)
    GET /p/{paragraph_id}                        a cited paragraph in context (HTML)
    GET /api/webchat/{session}/staff-messages    replies from hub staff for that chat (polled by the page);
                                                 needs `Authorization: Bearer <the session's signed token>`
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Callable

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from assistant import guard
from assistant.inbox import Inbox

from .settings import ServiceSettings

SOCKET_IO_CLIENT = "vendor/socket.io.min.js"
BUILD_HINT = "make web (npm ci in web/ and copy the socket.io client)"


class WebFiles(StaticFiles):
    """The page's own files only: stylesheets, scripts, images and fonts; never npm's node_modules,
    package files, or hidden files that also live in web/."""

    SUFFIXES = {".css", ".js", ".html", ".png", ".svg", ".ico", ".webp", ".woff2"}

    async def get_response(self, path: str, scope):
        parts = PurePosixPath(path.replace("\\", "/")).parts
        if (not parts or any(p == "node_modules" or p.startswith(".") for p in parts)
                or PurePosixPath(parts[-1]).suffix.lower() not in self.SUFFIXES):
            raise HTTPException(404, "Not Found")
        return await super().get_response(path, scope)


class StaffMessageOut(BaseModel):
    id: int
    created_at: str
    author: str
    text: str


class StaffMessages(BaseModel):
    messages: list[StaffMessageOut]


def _page(title: str, body: str, lang: str = "sv") -> str:
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)}</title><link rel="stylesheet" href="/static/paragraph.css"></head>'
            f"<body><main>{body}</main></body></html>")


def add_web_routes(app: FastAPI, settings: ServiceSettings, holder, inbox: Callable[[], Inbox]) -> None:
    web_dir: Path = settings.web_dir

    @lru_cache(maxsize=1)
    def index_html() -> str:
        return (web_dir / "index.html").read_text(encoding="utf-8").replace(
            "{{SOCKET_URL}}", html.escape(settings.webchat_socket_url, quote=True))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def chat_page() -> HTMLResponse:
        if not (web_dir / SOCKET_IO_CLIENT).exists():
            raise HTTPException(503, f"The web chat is not built: {web_dir / SOCKET_IO_CLIENT} is missing; run {BUILD_HINT}.")
        return HTMLResponse(index_html(), headers={"Cache-Control": "no-cache"})

    @app.get("/embed.js", include_in_schema=False)
    def embed_script() -> FileResponse:
        return FileResponse(web_dir / "embed.js", media_type="text/javascript")

    app.mount("/static", WebFiles(directory=web_dir, check_dir=False), name="static")

    @app.get("/p/{paragraph_id}", response_class=HTMLResponse, include_in_schema=False)
    def paragraph_page(paragraph_id: str) -> HTMLResponse:
        engine = holder.get()
        ctx = engine.paragraph(paragraph_id, neighbours=2)
        if ctx is None:
            return HTMLResponse(_page("Stycket finns inte", "<h1>Stycket finns inte</h1><p>Indexet har byggts om "
                                      "sedan svaret gavs. Ställ frågan igen i chatten.</p>"), status_code=404)
        p = ctx.paragraph
        meta = ", ".join(x for x in [f"{p.title} ({p.year})" if p.year else p.title,
                                     f"avsnitt ”{p.section}”" if p.section else "",
                                     f"s. {p.page}" if p.page else ""] if x)
        parts = [f"<h1>{html.escape(p.title)}</h1><p class=meta>{html.escape(meta)}</p>"]
        parts += [f'<p class=context>{html.escape(h.text)}</p>' for h in ctx.before]
        parts.append(f'<p class=cited id="{html.escape(p.paragraph_id, quote=True)}" tabindex="-1">'
                     f"<mark>{html.escape(p.text)}</mark></p>")
        parts += [f'<p class=context>{html.escape(h.text)}</p>' for h in ctx.after]
        parts.append(f"<p class=meta>Stycke {html.escape(p.paragraph_id)}</p>")
        return HTMLResponse(_page(f"{p.title} – citerat stycke", "".join(parts)))

    @app.get("/api/webchat/{session}/staff-messages", response_model=StaffMessages, tags=["web chat"],
             responses={401: {"description": "no valid session token"}, 403: {"description": "another session"}})
    def staff_messages(session: str, request: Request, after: int = Query(0, ge=0, le=2**62)) -> StaffMessages:
        """Staff replies for one web chat. Only the holder of the session's signed token (issued by the
        chat's socket, sent as `Authorization: Bearer <token>`) may read them."""
        if settings.webchat_secret is None or not settings.webchat_secret.get_secret_value():
            raise HTTPException(503, "Webbchattens sessioner är inte konfigurerade: sätt ASSISTANT_WEBCHAT_SECRET.")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        verified = guard.verify_session(token.strip(), settings.webchat_secret.get_secret_value()) \
            if scheme.lower() == "bearer" else None
        if verified is None:
            raise HTTPException(401, "Ogiltig eller utgången chattsession: ladda om sidan.",
                                headers={"WWW-Authenticate": "Bearer"})
        if verified.session_id != session:
            raise HTTPException(403, "Sessionen hör inte till den här chatten.")
        rows = inbox().staff_messages(verified.sender_id, after)
        return StaffMessages(messages=[StaffMessageOut(id=r.id, created_at=r.created_at, author=r.author, text=r.text)
                                       for r in rows])
