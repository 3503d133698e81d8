"""The hub staff's inbox: requests to talk to a person (with the conversation), replies that appear in
the user's web chat, and the questions the documents do not cover.

    GET  /inbox                                   the page (log in with the inbox token)
    POST /inbox/login, /inbox/logout              a session cookie for the page
    POST /inbox/requests/{id}/reply               reply from the page (form)
    GET  /api/inbox/requests                      requests with their transcripts         (Bearer token)
    POST /api/inbox/requests/{id}/reply           {"text", "author"} -> shown in that user's web chat
    GET  /api/inbox/gaps                          unanswered questions and 👎 answers, with counts
    GET  /api/inbox/gaps.csv                      the same as CSV

Everything needs the token from ASSISTANT_INBOX_TOKEN (as `Authorization: Bearer …`, or the page's
cookie); without a configured token the inbox is off (503). Transcripts come from Rasa's HTTP API
(`GET /conversations/{id}/tracker`), so they work with any tracker store.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import html
import io
import logging
from typing import Callable

import httpx
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from pydantic import BaseModel, Field

from assistant.inbox import Inbox

from .rasa_api import TranscriptCache
from .settings import ServiceSettings

log = logging.getLogger("assistant.staff")

COOKIE = "inbox_session"


class Turn(BaseModel):
    who: str  # user | bot | staff
    text: str
    time: float | None = None


class HandoffOut(BaseModel):
    id: int
    created_at: str
    sender_id: str
    question: str
    contact: str
    language: str
    status: str
    transcript: list[Turn]
    transcript_error: str | None = None


class ReplyIn(BaseModel):
    text: str = Field(..., min_length=1, max_length=4000)
    author: str = Field("Handläggare", min_length=1, max_length=100)


class ReplyOut(BaseModel):
    id: int
    sender_id: str


class Gap(BaseModel):
    kind: str  # unanswered | bad_answer
    question: str
    count: int
    last_seen: str


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe
    (users' questions are exported verbatim; `=HYPERLINK(…)` must not become a live formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _cookie_value(token: str) -> str:
    return hashlib.sha256(("inbox:" + token).encode()).hexdigest()


def add_staff_routes(app: FastAPI, settings: ServiceSettings, inbox: Callable[[], Inbox]) -> None:
    def token() -> str:
        if settings.inbox_token is None or not settings.inbox_token.get_secret_value():
            raise HTTPException(503, "Inkorgen är avstängd: sätt ASSISTANT_INBOX_TOKEN.")
        return settings.inbox_token.get_secret_value()

    def staff(request: Request) -> None:
        """Bearer token or the page's cookie; anything else is refused (401)."""
        expected = token()
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip(), expected):
            return
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie, _cookie_value(expected)):
            return
        raise HTTPException(401, "Inloggning krävs.", headers={"WWW-Authenticate": "Bearer"})

    rasa_secret = settings.rasa_api_token.get_secret_value() if settings.rasa_api_token else None
    transcripts = TranscriptCache(settings.rasa_url, rasa_secret, ttl=settings.inbox_transcript_cache_seconds)
    app.state.transcripts = transcripts

    def transcript(sender_id: str) -> tuple[list[Turn], str | None]:
        try:
            events = transcripts.events(sender_id)
        except (httpx.HTTPError, ValueError) as exc:
            # The details (URL, Rasa's answer) go to the server log, not to the page.
            log.warning("transcript of %r unavailable from Rasa: %s", sender_id, exc)
            return [], "Konversationen kunde inte hämtas från Rasa just nu."
        turns = []
        for event in events:
            if event.get("event") in ("user", "bot") and event.get("text"):
                turns.append(Turn(who=event["event"], text=event["text"], time=event.get("timestamp")))
        for m in inbox().staff_messages(sender_id):
            turns.append(Turn(who="staff", text=f"{m.author}: {m.text}"))
        return turns, None

    def request_out(r) -> HandoffOut:
        turns, error = transcript(r.sender_id)
        return HandoffOut(**r.__dict__, transcript=turns, transcript_error=error)

    def requests_out(status: str | None = None, limit: int = 50, before: int | None = None) -> list[HandoffOut]:
        """One page of requests, newest first; transcripts come through the cache (at most one Rasa call
        per conversation shown and cache period)."""
        return [request_out(r) for r in reversed(inbox().handoffs(status, limit=limit, before=before))]

    def reply(request_id: int, body: ReplyIn) -> ReplyOut:
        stored = inbox().reply(request_id, body.author.strip(), body.text.strip())  # message + status together
        if stored is None:
            raise HTTPException(404, f"Ärende {request_id} finns inte.")
        return ReplyOut(id=stored[0], sender_id=stored[1])

    def gaps(limit: int | None = None, offset: int = 0) -> list[Gap]:
        return [Gap(kind=k, question=q, count=n, last_seen=last) for k, q, n, last in inbox().gaps(limit, offset)]

    # -- API ----------------------------------------------------------------------------------------
    @app.get("/api/inbox/requests", response_model=list[HandoffOut], tags=["staff inbox"],
             dependencies=[Depends(staff)])
    def api_requests(status: str | None = Query(None, max_length=20), limit: int = Query(50, ge=1, le=200),
                     before: int | None = Query(None, ge=1, le=2**62)) -> list[HandoffOut]:
        """Newest first, `limit` per page; the next page: `before` = the last id of this one."""
        return requests_out(status, limit, before)

    @app.get("/api/inbox/requests/{request_id}", response_model=HandoffOut, tags=["staff inbox"],
             dependencies=[Depends(staff)])
    def api_request(request_id: int) -> HandoffOut:
        r = inbox().handoff(request_id)
        if r is None:
            raise HTTPException(404, f"Ärende {request_id} finns inte.")
        return request_out(r)

    @app.post("/api/inbox/requests/{request_id}/reply", response_model=ReplyOut, tags=["staff inbox"],
              dependencies=[Depends(staff)])
    def api_reply(request_id: int, body: ReplyIn) -> ReplyOut:
        return reply(request_id, body)

    @app.get("/api/inbox/gaps", response_model=list[Gap], tags=["staff inbox"], dependencies=[Depends(staff)])
    def api_gaps(limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=2**31)) -> list[Gap]:
        return gaps(limit, offset)

    @app.get("/api/inbox/gaps.csv", tags=["staff inbox"], dependencies=[Depends(staff)])
    def api_gaps_csv() -> PlainTextResponse:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["kind", "question", "count", "last_seen"])
        for g in gaps():
            writer.writerow([csv_cell(v) for v in (g.kind, g.question, g.count, g.last_seen)])
        return PlainTextResponse(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="obesvarade-fragor.csv"'})

    # -- page ---------------------------------------------------------------------------------------
    def page(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html><html lang="sv"><head><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width, initial-scale=1"><title>Inkorg – Upphandlingsassistenten</title>'
            '<link rel="stylesheet" href="/static/inbox.css"></head><body><main>' + body + "</main></body></html>",
            status_code=status, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})

    @app.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
    def inbox_page(request: Request, before: int | None = Query(None, ge=1, le=2**62)) -> HTMLResponse:
        try:
            staff(request)
        except HTTPException as exc:
            if exc.status_code == 503:
                return page(f"<h1>Inkorgen är avstängd</h1><p>{html.escape(exc.detail)}</p>", 503)
            return page('<h1>Inkorg</h1><form method="post" action="/inbox/login"><label for="token">Inloggningsnyckel'
                        '</label> <input id="token" name="token" type="password" required autocomplete="current-password">'
                        ' <button type="submit">Logga in</button></form>', 401)
        e = html.escape
        parts = ['<h1>Inkorg</h1><form method="post" action="/inbox/logout"><button type="submit">Logga ut</button>'
                 '</form><h2>Vill prata med en person</h2>']
        size = settings.inbox_page_size
        requests = requests_out(limit=size, before=before)
        if not requests:
            parts.append("<p>Inga ärenden.</p>")
        for r in requests:
            turns = "".join(f'<li class="turn turn--{e(t.who)}"><span class="who">'
                            f'{ {"user": "Användare", "bot": "Assistent", "staff": "Personal"}[t.who] }</span> '
                            f"{e(t.text)}</li>" for t in r.transcript)
            error = f'<p class="error">{e(r.transcript_error)}</p>' if r.transcript_error else ""
            parts.append(
                f'<section class="request" aria-labelledby="r{r.id}"><h3 id="r{r.id}">Ärende {r.id} '
                f'<span class="status">({e(r.status)})</span></h3><p><strong>Fråga:</strong> {e(r.question)}<br>'
                f"<strong>Kontakt:</strong> {e(r.contact)}<br><strong>Inkom:</strong> {e(r.created_at)}</p>"
                f'<details><summary>Konversationen</summary><ol class="transcript">{turns}</ol></details>{error}'
                f'<form method="post" action="/inbox/requests/{r.id}/reply"><label for="reply{r.id}">Svar till '
                f'användaren</label><textarea id="reply{r.id}" name="text" required maxlength="4000"></textarea>'
                f'<label for="author{r.id}">Ditt namn</label><input id="author{r.id}" name="author" '
                f'value="Handläggare" maxlength="100"><button type="submit">Skicka svar</button></form></section>')
        if len(requests) == size:
            parts.append(f'<p><a href="/inbox?before={requests[-1].id}">Äldre ärenden</a></p>')
        if before is not None:
            parts.append('<p><a href="/inbox">Senaste ärendena</a></p>')
        rows = "".join(f"<tr><td>{'Obesvarad' if g.kind == 'unanswered' else '👎 svar'}</td><td>{e(g.question)}</td>"
                       f"<td>{g.count}</td><td>{e(g.last_seen)}</td></tr>" for g in gaps(settings.inbox_page_size * 5))
        parts.append('<h2>Frågor som dokumenten inte täcker</h2><p>De vanligaste; alla finns i '
                     '<a href="/api/inbox/gaps.csv">CSV-filen</a>.</p><table><thead><tr><th scope="col">Typ</th><th scope="col">Fråga</th><th scope="col">Antal'
                     f'</th><th scope="col">Senast</th></tr></thead><tbody>{rows}</tbody></table>')
        return page("".join(parts))

    @app.post("/inbox/login", include_in_schema=False)
    def login(token_value: str = Form(..., alias="token")) -> RedirectResponse:
        if not hmac.compare_digest(token_value.strip(), token()):
            return RedirectResponse("/inbox?fel=1", status_code=303)
        response = RedirectResponse("/inbox", status_code=303)
        response.set_cookie(COOKIE, _cookie_value(token()), httponly=True, samesite="strict", path="/",
                            secure=settings.inbox_secure_cookie)
        return response

    @app.post("/inbox/logout", include_in_schema=False)
    def logout() -> RedirectResponse:
        response = RedirectResponse("/inbox", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.post("/inbox/requests/{request_id}/reply", include_in_schema=False, dependencies=[Depends(staff)])
    def page_reply(request_id: int, text: str = Form(...), author: str = Form("Handläggare")) -> RedirectResponse:
        try:
            body = ReplyIn(text=text, author=author or "Handläggare")
        except ValueError as exc:
            raise HTTPException(422, "Svaret måste vara 1–4000 tecken.") from exc
        reply(request_id, body)
        return RedirectResponse("/inbox", status_code=303)
