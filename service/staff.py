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
import math
import secrets
import threading
import time
from typing import Callable

import httpx
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from pydantic import BaseModel, Field

from assistant import guard
from assistant.inbox import Inbox

from .rasa_api import DeliveryError, TranscriptCache, deliver_staff_reply
from .settings import ServiceSettings

log = logging.getLogger("assistant.staff")

COOKIE = "inbox_session"
# The inbox page: its own stylesheet, forms to itself, nothing else; never inside a frame.
INBOX_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
                "frame-ancestors 'none'")


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
    # Slack and Teams users get the reply in their channel ("slack"/"teams"); web chats show it themselves.
    delivered_to: str | None = None
    delivery_error: str | None = None  # stored, but Slack/Teams did not get it (the reason)


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


class StaffSessions:
    """Server-side staff sessions: the cookie is a random value (only its hash is kept), valid for
    ``hours`` after login, revoked by logout; a restart of the service logs everyone out."""

    def __init__(self, hours: float, max_sessions: int = 1000):
        self.ttl, self.max_sessions = hours * 3600, max_sessions
        self.clock = time.monotonic
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(cookie: str) -> str:
        return hashlib.sha256(cookie.encode("utf-8", "surrogatepass")).hexdigest()

    def create(self) -> str:
        cookie = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._expiry = {k: t for k, t in self._expiry.items() if t > now}
            while len(self._expiry) >= self.max_sessions:  # the oldest session goes first
                self._expiry.pop(min(self._expiry, key=self._expiry.get))
            self._expiry[self._key(cookie)] = now + self.ttl
        return cookie

    def valid(self, cookie: str) -> bool:
        if not cookie:
            return False
        with self._lock:
            expiry = self._expiry.get(self._key(cookie))
            if expiry is not None and expiry <= self.clock():
                self._expiry.pop(self._key(cookie), None)
                return False
            return expiry is not None

    def revoke(self, cookie: str) -> None:
        with self._lock:
            self._expiry.pop(self._key(cookie), None)


class LoginThrottle:
    """At most ``failures`` wrong tokens per client address within ``window`` seconds (in memory)."""

    def __init__(self, failures: int, window: float = 900.0, max_addresses: int = 10_000):
        self.failures, self.window, self.max_addresses = failures, window, max_addresses
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> list[float]:
        times = [t for t in self._seen.get(address, []) if now - t < self.window]
        if times:
            self._seen[address] = times
        else:
            self._seen.pop(address, None)
        return times

    def retry_after(self, address: str) -> int:
        """Seconds until this address may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            return int(self.window - (now - times[0])) + 1 if len(times) >= self.failures else 0

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if address not in self._seen and len(self._seen) >= self.max_addresses:
                self._seen.pop(next(iter(self._seen)))
            self._seen.setdefault(address, []).append(now)
            self._recent(address, now)


def client_address(request: Request, trusted: tuple) -> str:
    """Where a request to the web service came from (see assistant.guard.client_address)."""
    peer = request.client.host if request.client else None
    return guard.client_address(peer, ",".join(request.headers.getlist("x-forwarded-for")), trusted)


def same_token(given: str, expected: str) -> bool:
    """Constant-time comparison of bytes (any text, non-ASCII included, compares without an error)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def add_staff_routes(app: FastAPI, settings: ServiceSettings, inbox: Callable[[], Inbox]) -> None:
    sessions = app.state.staff_sessions = StaffSessions(settings.inbox_session_hours)
    throttle = LoginThrottle(settings.inbox_login_failures)

    def token() -> str:
        if settings.inbox_token is None or not settings.inbox_token.get_secret_value():
            raise HTTPException(503, "Inkorgen är avstängd: sätt ASSISTANT_INBOX_TOKEN.")
        return settings.inbox_token.get_secret_value()

    trusted = guard.trusted_networks(settings.trusted_proxies)

    def address(request: Request) -> str:
        """The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy (the
        service runs uvicorn without its own proxy-header handling, so this is the only rule)."""
        return guard.address_key(client_address(request, trusted))

    def refuse_if_throttled(request: Request) -> None:
        wait = throttle.retry_after(address(request))
        if wait:
            raise HTTPException(429, "För många felaktiga inloggningar; försök igen senare.",
                                headers={"Retry-After": str(wait)})

    def staff(request: Request) -> None:
        """Bearer token or the page's session cookie; anything else is refused (401)."""
        expected = token()
        if sessions.valid(request.cookies.get(COOKIE, "")):
            return
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            refuse_if_throttled(request)
            if same_token(auth[7:].strip(), expected):
                return
            throttle.failed(address(request))
        raise HTTPException(401, "Inloggning krävs.", headers={"WWW-Authenticate": "Bearer"})

    def same_origin(request: Request) -> None:
        """State-changing page routes: a browser's Origin, when sent, must be this service's own."""
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin is not None and origin != own:
            raise HTTPException(403, "Förfrågan kom från en annan webbplats.")

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
        try:
            channel = deliver_staff_reply(settings.rasa_url, rasa_secret, stored[1], body.author.strip(), body.text.strip())
        except DeliveryError as exc:
            log.warning("staff reply %s to %r stored but not delivered: %s", stored[0], stored[1], exc)
            return ReplyOut(id=stored[0], sender_id=stored[1], delivery_error=str(exc))
        return ReplyOut(id=stored[0], sender_id=stored[1], delivered_to=channel)

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
            status_code=status, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                         "Content-Security-Policy": INBOX_POLICY})

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

    @app.post("/inbox/login", include_in_schema=False, dependencies=[Depends(same_origin)])
    def login(request: Request, token_value: str = Form(..., alias="token", max_length=1000)) -> RedirectResponse:
        expected = token()
        refuse_if_throttled(request)
        if not same_token(token_value.strip(), expected):
            throttle.failed(address(request))
            return RedirectResponse("/inbox?fel=1", status_code=303)
        response = RedirectResponse("/inbox", status_code=303)
        response.set_cookie(COOKIE, sessions.create(), max_age=math.ceil(settings.inbox_session_hours * 3600),
                            httponly=True, samesite="strict", path="/",
                            secure=settings.inbox_secure_cookie or request.url.scheme == "https")
        return response

    @app.post("/inbox/logout", include_in_schema=False, dependencies=[Depends(same_origin)])
    def logout(request: Request) -> RedirectResponse:
        sessions.revoke(request.cookies.get(COOKIE, ""))
        response = RedirectResponse("/inbox", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=settings.inbox_secure_cookie or request.url.scheme == "https")
        return response

    @app.post("/inbox/requests/{request_id}/reply", include_in_schema=False,
              dependencies=[Depends(same_origin), Depends(staff)])
    def page_reply(request_id: int, text: str = Form(...), author: str = Form("Handläggare")) -> RedirectResponse:
        try:
            body = ReplyIn(text=text, author=author or "Handläggare")
        except ValueError as exc:
            raise HTTPException(422, "Svaret måste vara 1–4000 tecken.") from exc
        reply(request_id, body)
        return RedirectResponse("/inbox", status_code=303)
