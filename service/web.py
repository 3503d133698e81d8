"""The website chat: the page, the one-line embed script, a paragraph view, and staff replies.

    GET /                                        the chat page (talks to Rasa's socket.io channel)
    GET /embed.js                                <script src=".../embed.js"></script> puts the chat on any site
    GET /favicon.ico                             the page's icon (SVG)
    GET /static/...                              the page's files (web/: css, js, images; not node_modules)
    GET /p/{paragraph_id}                        a cited paragraph in context (HTML; ?lang=en for English)
    GET /documents/{doc_id}/file                 a source document's file, as listed in the index
    GET /api/webchat/{session}/staff-messages    replies from hub staff for that chat (polled by the page)
    GET /api/webchat/{session}/history           the conversation so far (the page restores it on reload)
                                                 both need `Authorization: Bearer <the session's signed token>`
"""

from __future__ import annotations

import html
from datetime import datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Callable
from urllib.parse import quote

import httpx
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from assistant import guard
from assistant.inbox import Inbox

from .rasa_api import rasa_api_jwt, tracker_url
from .settings import ServiceSettings

SOCKET_IO_CLIENT = "vendor/socket.io.min.js"
BUILD_HINT = "make web (npm ci in web/ and copy the socket.io client)"
HISTORY_LIMIT = 200  # the newest messages a reload restores

# Source files are served with a type that browsers cannot run: text as plain text, PDFs as PDFs,
# anything else as a download.
SAFE_TYPES = {".txt": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8",
              ".pdf": "application/pdf"}


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
    # the reply as an answer payload (assistant/payload.py), when staff attached citation cards
    custom: dict[str, Any] | None = None


def staff_custom(m) -> dict[str, Any] | None:
    """A staff message's citations in the bot answers' contract (None without citations)."""
    from assistant.staffhelp import staff_payload

    return dict(staff_payload(m.text, m.language or "sv", m.citations)) if m.citations else None


class StaffMessages(BaseModel):
    messages: list[StaffMessageOut]


class HistoryMessage(BaseModel):
    who: str  # user | bot | staff
    text: str = ""
    kind: str | None = None  # "human" for the hand-over button (the page shows it in its own language)
    custom: dict[str, Any] | None = None
    buttons: list[dict[str, Any]] | None = None
    time: float | None = None
    author: str | None = None


class History(BaseModel):
    messages: list[HistoryMessage]
    staff_after: int  # the newest staff message included; the page polls for newer ones
    error: str | None = None


PAGE_TEXT = {
    "sv": {"missing": "Stycket finns inte", "missing_body": "Indexet har byggts om sedan svaret gavs. "
           "Ställ frågan igen i chatten.", "back": "← Tillbaka till chatten", "section": "avsnitt", "page": "Sida",
           "document": "Öppna dokumentet", "paragraph": "Stycke", "cited": "citerat stycke",
           "quote": "Citatet"},
    "en": {"missing": "The paragraph does not exist", "missing_body": "The index has been rebuilt since the answer "
           "was given. Ask the question again in the chat.", "back": "← Back to the chat", "section": "section",
           "page": "Page", "document": "Open the document", "paragraph": "Paragraph", "cited": "cited paragraph",
           "quote": "The quote"},
}


def _page(title: str, body: str, lang: str = "sv") -> str:
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)}</title><link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
            '<link rel="stylesheet" href="/static/paragraph.css"></head>'
            f'<body><main>{body}</main><script src="/static/paragraph.js"></script></body></html>')


def history_from_events(events: list[dict]) -> list[HistoryMessage]:
    """User and bot messages of a tracker, as the web chat shows them: button payloads as the button's
    title, the hand-over button as a marker, 👍/👎 and other internal payloads left out."""
    out: list[HistoryMessage] = []
    buttons: dict[str, str] = {}  # payload -> title of the buttons the bot offered last
    for event in events:
        kind = event.get("event")
        if kind == "bot":
            data = event.get("data") or {}
            offered = [{"title": b.get("title"), "payload": b.get("payload")} for b in data.get("buttons") or []
                       if isinstance(b, dict)]
            if offered:
                buttons = {b["payload"]: b["title"] for b in offered if b["payload"] and b["title"]}
            custom = data.get("custom") if isinstance(data.get("custom"), dict) else None
            if event.get("text") or custom:
                out.append(HistoryMessage(who="bot", text=event.get("text") or "", custom=custom,
                                          buttons=offered or None, time=event.get("timestamp")))
        elif kind == "user":
            text = event.get("text") or ""
            if text in buttons:
                out.append(HistoryMessage(who="user", text=buttons[text], time=event.get("timestamp")))
            elif text.startswith("/request_human"):
                out.append(HistoryMessage(who="user", kind="human", time=event.get("timestamp")))
            elif text and not text.startswith("/"):
                out.append(HistoryMessage(who="user", text=text, time=event.get("timestamp")))
    return out


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

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(web_dir / "favicon.svg", media_type="image/svg+xml",
                            headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/static", WebFiles(directory=web_dir, check_dir=False), name="static")

    @app.get("/p/{paragraph_id}", response_class=HTMLResponse, include_in_schema=False)
    def paragraph_page(paragraph_id: str, lang: str = "sv") -> HTMLResponse:
        lang = "en" if lang == "en" else "sv"
        tx = PAGE_TEXT[lang]
        back = f'<p class=nav><a href="/{"?lang=en" if lang == "en" else ""}" class=back>{tx["back"]}</a></p>'
        engine = holder.get()
        ctx = engine.paragraph(paragraph_id, neighbours=2)
        if ctx is None:
            return HTMLResponse(_page(tx["missing"], f'{back}<h1>{tx["missing"]}</h1><p>{tx["missing_body"]}</p>',
                                      lang), status_code=404)
        p = ctx.paragraph
        meta = ", ".join(x for x in [f"{p.title} ({p.year})" if p.year else p.title,
                                     f"{tx['section']} ”{p.section}”" if p.section else ""] if x)
        document = next((d for d in engine.documents() if d.doc_id == p.doc_id), None)
        parts = [back, f"<h1>{html.escape(p.title)}</h1><p class=meta>{html.escape(meta)}</p>"]
        facts = []
        if p.page:
            facts.append(f'<span class=page>{tx["page"]} {html.escape(str(p.page))}</span>')
        if document is not None:
            href = f"/documents/{quote(document.doc_id, safe='')}/file"
            if p.page and document.file.lower().endswith(".pdf"):
                href += f"#page={int(p.page)}"
            facts.append(f'<a class=doc href="{html.escape(href, quote=True)}">{tx["document"]} '
                         f'({html.escape(Path(document.file).suffix.lstrip(".").upper() or "fil")})</a>')
        if facts:
            parts.append(f"<p class=facts>{' · '.join(facts)}</p>")
        parts += [f'<p class=context>{html.escape(h.text)}</p>' for h in ctx.before]
        parts.append(f'<p class=cited id="{html.escape(p.paragraph_id, quote=True)}" tabindex="-1" '
                     f'aria-label="{tx["quote"]}"><mark>{html.escape(p.text)}</mark></p>')
        parts += [f'<p class=context>{html.escape(h.text)}</p>' for h in ctx.after]
        parts.append(f"<p class=meta>{tx['paragraph']} {html.escape(p.paragraph_id)}</p>")
        return HTMLResponse(_page(f"{p.title} – {tx['cited']}", "".join(parts), lang))

    @app.get("/documents/{doc_id}/file", include_in_schema=False)
    def document_file(doc_id: str) -> FileResponse:
        """A source document as stored in the knowledge folder: only files the index lists."""
        document = next((d for d in holder.get().documents() if d.doc_id == doc_id), None)
        if document is None:
            raise HTTPException(404, "Dokumentet finns inte i indexet.")
        folder = Path(settings.knowledge_dir).resolve()
        path = (folder / document.file).resolve()
        if folder not in path.parents or not path.is_file():
            raise HTTPException(404, "Dokumentets fil finns inte.")
        media_type = SAFE_TYPES.get(path.suffix.lower())
        headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}
        if media_type is None:
            return FileResponse(path, media_type="application/octet-stream", filename=path.name, headers=headers)
        return FileResponse(path, media_type=media_type, headers=headers,
                            content_disposition_type="inline", filename=path.name)

    def verified_session(session: str, request: Request) -> guard.WebSession:
        """The session of `Authorization: Bearer <token>`, refused unless it is valid and this chat's."""
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
        return verified

    @app.get("/api/webchat/{session}/staff-messages", response_model=StaffMessages, tags=["web chat"],
             responses={401: {"description": "no valid session token"}, 403: {"description": "another session"}})
    def staff_messages(session: str, request: Request, after: int = Query(0, ge=0, le=2**62)) -> StaffMessages:
        """Staff replies for one web chat. Only the holder of the session's signed token (issued by the
        chat's socket, sent as `Authorization: Bearer <token>`) may read them."""
        verified = verified_session(session, request)
        rows = inbox().staff_messages(verified.sender_id, after)
        return StaffMessages(messages=[StaffMessageOut(id=r.id, created_at=r.created_at, author=r.author, text=r.text,
                                                       custom=staff_custom(r)) for r in rows])

    def tracker_events(sender_id: str) -> list[dict]:
        """This conversation's tracker, fresh (no cache: a reload must show the last answer), with a
        short-lived JWT scoped to this conversation, as the staff inbox reads transcripts."""
        secret = settings.rasa_api_token.get_secret_value() if settings.rasa_api_token else None
        headers = {"Authorization": f"Bearer {rasa_api_jwt(secret, sender_id)}"} if secret else {}
        response = httpx.get(tracker_url(settings.rasa_url, sender_id), headers=headers, timeout=10)
        response.raise_for_status()
        return response.json().get("events") or []

    @app.get("/api/webchat/{session}/history", response_model=History, tags=["web chat"],
             responses={401: {"description": "no valid session token"}, 403: {"description": "another session"}})
    def history(session: str, request: Request) -> History:
        """The conversation of one web chat so far (from Rasa's tracker, plus staff replies), for the page to
        show again after a reload. Needs the session's signed token, as staff-messages does."""
        verified = verified_session(session, request)
        error = None
        try:
            messages = history_from_events(tracker_events(verified.sender_id))
        except (httpx.HTTPError, ValueError) as exc:
            messages, error = [], f"Konversationen kunde inte hämtas: {exc.__class__.__name__}"
        staff = inbox().staff_messages(verified.sender_id)
        for m in staff:
            messages.append(HistoryMessage(who="staff", text=m.text, author=m.author, time=_timestamp(m.created_at),
                                           custom=staff_custom(m)))
        # Staff replies go in by time (stable: messages without a time keep their place at the end).
        messages.sort(key=lambda m: m.time if m.time is not None else float("inf"))
        return History(messages=messages[-HISTORY_LIMIT:], staff_after=max((m.id for m in staff), default=0),
                       error=error)


def _timestamp(iso: str) -> float | None:
    """A staff message's time (stored to the second) as the end of that second, so a reply written
    within the second of the answer it follows still comes after it."""
    try:
        return datetime.fromisoformat(iso).timestamp() + 0.999
    except ValueError:
        return None
