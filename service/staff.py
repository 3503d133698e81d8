"""The hub staff's inbox: requests to talk to a person (with the conversation), replies that appear in
the user's web chat, and the questions the documents do not cover.

    GET  /inbox                                   the page (log in with the inbox token)
    POST /inbox/login, /inbox/logout              a session cookie for the page
    POST /inbox/name                              the staff member's name, kept in the session
    POST /inbox/requests/{id}/reply               reply from the page (form), with citation cards
    POST /inbox/requests/{id}/example             save the request's question as an example for a paragraph
    GET  /inbox/gap?q=…                           answer a gap: the draft, its paragraphs, save as example
    POST /inbox/gaps/example, /inbox/gaps/reply   the same for a gap (the reply goes to whoever asked it)
    GET  /api/inbox/requests                      requests with their transcripts         (Bearer token)
    GET  /api/inbox/requests/{id}/draft           the assistant's cited paragraphs and a draft reply
    POST /api/inbox/requests/{id}/reply           {"text", "author", "citations"} -> shown in that user's web chat
    GET  /api/inbox/gaps                          unanswered questions and 👎 answers, with counts
    GET  /api/inbox/gaps/draft?question=…         the draft for a gap
    POST /api/inbox/examples                      {"paragraph_id", "request_id" | "gap"}: save as example question
    GET  /api/inbox/gaps.csv                      the same as CSV

Drafts come from the assistant's own answer code over this service's SearchEngine
(``assistant.staffhelp``). A saved example question is appended to knowledge/questions/staff.jsonl and
added to the running engine at once; the action server's engine reads the file when it changes.

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
from typing import Any, Callable
from urllib.parse import quote as url_quote

import httpx
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from pydantic import BaseModel, Field, field_validator

from assistant import guard
from assistant.inbox import Inbox
from assistant.payload import citation_place
from assistant.staffhelp import (MAX_ATTACHED, DraftMaker, StaffNameError, conversation_language, staff_name,
                                 staff_payload)
from index.questions import MAX_PARAGRAPH_ID_CHARS, StaffQuestionError

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


DEFAULT_AUTHOR = "Handläggare"


class _Signed(BaseModel):
    text: str = Field(..., min_length=1, max_length=4000)
    author: str = Field(DEFAULT_AUTHOR, min_length=1, max_length=100)
    # paragraphs whose citation cards the reply carries into the user's chat (from the draft, or any of the index)
    citations: list[str] = Field(default_factory=list, max_length=MAX_ATTACHED)

    @field_validator("author")
    @classmethod
    def _a_name(cls, value: str) -> str:
        return staff_name(value)

    @field_validator("citations")
    @classmethod
    def _paragraph_ids(cls, value: list[str]) -> list[str]:
        if any(not 0 < len(v) <= MAX_PARAGRAPH_ID_CHARS for v in value):
            raise ValueError("ogiltigt stycke")
        return value


class ReplyIn(_Signed):
    pass


class DraftOut(BaseModel):
    question: str
    language: str
    coverage: str  # the assistant's verdict on the question: full | partial | none
    citations: list[dict[str, Any]]  # CitationPayload
    text: str  # the draft reply


class ExampleIn(BaseModel):
    paragraph_id: str = Field(..., min_length=1, max_length=MAX_PARAGRAPH_ID_CHARS)
    request_id: int | None = Field(None, ge=1, le=2**62)  # the question of this request …
    gap: str | None = Field(None, min_length=1, max_length=1000)  # … or this question of the gaps list


class ExampleOut(BaseModel):
    paragraph_id: str
    question: str
    lang: str
    saved: bool  # False: the file already held it
    live: bool  # the running search has it (always true once saved)


class GapReplyIn(_Signed):
    question: str = Field(..., min_length=1, max_length=1000)


class GapReplyOut(BaseModel):
    conversations: int


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


def _iso_time(iso: str) -> float | None:
    """A stored time (ISO 8601, to the second) as its second's end, so a staff message sorts after the
    turns of the same second."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso).timestamp() + 0.999
    except ValueError:
        return None


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
        self._names: dict[str, str] = {}  # the staff member's name per session (shown on their replies)
        self._lock = threading.Lock()

    @staticmethod
    def _key(cookie: str) -> str:
        return hashlib.sha256(cookie.encode("utf-8", "surrogatepass")).hexdigest()

    def create(self, name: str | None = None) -> str:
        """A new session; ``name`` (already checked with ``staff_name``) signs this person's replies."""
        cookie = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._expiry = {k: t for k, t in self._expiry.items() if t > now}
            while len(self._expiry) >= self.max_sessions:  # the oldest session goes first
                self._expiry.pop(min(self._expiry, key=self._expiry.get))
            self._names = {k: n for k, n in self._names.items() if k in self._expiry}
            self._expiry[self._key(cookie)] = now + self.ttl
            if name:
                self._names[self._key(cookie)] = name
        return cookie

    def name(self, cookie: str) -> str | None:
        """The name kept in a valid session (None: none given, or no such session)."""
        if not self.valid(cookie):
            return None
        with self._lock:
            return self._names.get(self._key(cookie))

    def set_name(self, cookie: str, name: str) -> bool:
        if not self.valid(cookie):
            return False
        with self._lock:
            self._names[self._key(cookie)] = name
        return True

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
            self._names.pop(self._key(cookie), None)


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


def add_staff_routes(app: FastAPI, settings: ServiceSettings, inbox: Callable[[], Inbox], engine_holder=None) -> None:
    """``engine_holder`` (service.app.EngineHolder): the service's search engine, for drafts and examples."""
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

    def secure_cookie(request: Request) -> bool:
        return (settings.inbox_secure_cookie or request.url.scheme == "https"
                or settings.public_url.startswith("https://"))

    def same_origin(request: Request) -> None:
        """State-changing page routes: a browser's Origin, when sent, must be this service's own."""
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        # Behind a TLS-terminating proxy the browser's origin is the public https address, not the one
        # the request arrives at (ASSISTANT_PUBLIC_URL).
        if origin is not None and origin != own and (not settings.public_url or origin != settings.public_url):
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
            turns.append(Turn(who="staff", text=f"{m.author}: {m.text}", time=_iso_time(m.created_at)))
        turns.sort(key=lambda t: t.time if t.time is not None else float("inf"))
        return turns, None

    def request_out(r) -> HandoffOut:
        turns, error = transcript(r.sender_id)
        return HandoffOut(**r.__dict__, transcript=turns, transcript_error=error)

    def requests_out(status: str | None = None, limit: int = 50, before: int | None = None) -> list[HandoffOut]:
        """One page of requests, newest first; transcripts come through the cache (at most one Rasa call
        per conversation shown and cache period)."""
        return [request_out(r) for r in reversed(inbox().handoffs(status, limit=limit, before=before))]

    # -- help answering: drafts from the assistant's citations, examples saved live --------------------
    drafting: dict[str, DraftMaker] = {}
    drafting_lock = threading.Lock()

    def engine():
        if engine_holder is None:
            raise HTTPException(503, "Sökindexet finns inte i den här tjänsten.")
        return engine_holder.get(timeout=30)

    def drafter() -> DraftMaker:
        from assistant.answer import Answerer

        current = engine()
        with drafting_lock:
            maker = drafting.get("maker")
            if maker is None or maker.answerer.engine is not current:
                maker = drafting["maker"] = DraftMaker(Answerer(current, settings))
            return maker

    def link_maker(request: Request) -> Callable[[str], str]:
        # Links that leave the inbox (in the user's chat, Slack, Teams) use the public address when one is
        # set: behind a reverse proxy the address the request arrived at is an internal one.
        base = settings.public_url or str(request.base_url).rstrip("/")
        return lambda pid: f"{base}/p/{url_quote(pid, safe='')}"

    def draft_for(question: str, language: str, request: Request):
        return drafter().draft(question, language, link_maker(request))

    def draft_out(d) -> DraftOut:
        return DraftOut(question=d.question, language=d.language, coverage=d.coverage, text=d.text,
                        citations=[c.payload() for c in d.citations])

    def attach(question: str, language: str, paragraph_ids: list[str], request: Request) -> list[dict]:
        if not paragraph_ids:
            return []
        maker = drafter()
        return maker.attached(maker.draft(question, language, link_maker(request)), paragraph_ids)

    def reply(request_id: int, body: ReplyIn, request: Request) -> ReplyOut:
        r = inbox().handoff(request_id)
        if r is None:
            raise HTTPException(404, f"Ärende {request_id} finns inte.")
        language = conversation_language(r.language, r.question)
        cards = attach(r.question, language, body.citations, request)
        stored = inbox().reply(request_id, body.author, body.text.strip(), cards, language)  # message + status together
        if stored is None:
            raise HTTPException(404, f"Ärende {request_id} finns inte.")
        try:
            channel = deliver_staff_reply(settings.rasa_url, rasa_secret, stored[1], body.author.strip(), body.text.strip())
        except DeliveryError as exc:
            log.warning("staff reply %s to %r stored but not delivered: %s", stored[0], stored[1], exc)
            return ReplyOut(id=stored[0], sender_id=stored[1], delivery_error=str(exc))
        return ReplyOut(id=stored[0], sender_id=stored[1], delivered_to=channel)

    def gap_reply(body: GapReplyIn, request: Request) -> int:
        """The reply to every conversation that asked this gap's question (each gets it in its own chat)."""
        askers = inbox().gap_askers(body.question)
        if not askers:
            raise HTTPException(404, "Frågan finns inte bland de obesvarade.")
        language = conversation_language(None, body.question)
        cards = attach(body.question, language, body.citations, request)
        for sender_id in askers:
            inbox().add_staff_message(sender_id, body.author, body.text.strip(), cards, language)
            try:  # Slack and Teams askers get it in their channel (web chats fetch it themselves)
                deliver_staff_reply(settings.rasa_url, rasa_secret, sender_id, body.author.strip(), body.text.strip())
            except DeliveryError as exc:
                log.warning("gap reply to %r stored but not delivered: %s", sender_id, exc)
        return len(askers)

    def save_example(paragraph_id: str, question: str, language: str | None) -> ExampleOut:
        current = engine()
        if current.position(paragraph_id) is None:
            raise HTTPException(422, "Stycket finns inte i sökindexet.")
        lang = conversation_language(language, question)
        try:
            example, saved = current.staff_questions.add(paragraph_id, question, lang)
        except StaffQuestionError as exc:
            raise HTTPException(422, str(exc)) from exc
        current.add_example_questions([(example.paragraph_id, example.question)])  # live, now
        with drafting_lock:
            drafting.pop("maker", None)  # drafts made before the example may rank differently now
        log.info("staff saved an example question for %s (%s)", paragraph_id, "new" if saved else "already there")
        return ExampleOut(paragraph_id=example.paragraph_id, question=example.question, lang=example.lang,
                          saved=saved, live=True)

    def example_in(body: ExampleIn) -> ExampleOut:
        if (body.request_id is None) == (body.gap is None):
            raise HTTPException(422, "Ange antingen request_id eller gap.")
        if body.request_id is not None:
            r = inbox().handoff(body.request_id)
            if r is None:
                raise HTTPException(404, f"Ärende {body.request_id} finns inte.")
            return save_example(body.paragraph_id, r.question, r.language)
        if not inbox().gap_askers(body.gap, limit=1):
            raise HTTPException(404, "Frågan finns inte bland de obesvarade.")
        return save_example(body.paragraph_id, body.gap.strip(), None)

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

    @app.get("/api/inbox/requests/{request_id}/draft", response_model=DraftOut, tags=["staff inbox"],
             dependencies=[Depends(staff)])
    def api_request_draft(request_id: int, request: Request) -> DraftOut:
        """The assistant's best cited paragraphs for the request's question and a reply made of their
        quotes and sources, in the conversation's language."""
        r = inbox().handoff(request_id)
        if r is None:
            raise HTTPException(404, f"Ärende {request_id} finns inte.")
        return draft_out(draft_for(r.question, conversation_language(r.language, r.question), request))

    @app.post("/api/inbox/requests/{request_id}/reply", response_model=ReplyOut, tags=["staff inbox"],
              dependencies=[Depends(same_origin), Depends(staff)])
    def api_reply(request_id: int, body: ReplyIn, request: Request) -> ReplyOut:
        """The reply, signed with `author`, and the citation cards of the paragraphs in `citations`."""
        return reply(request_id, body, request)

    @app.get("/api/inbox/gaps/draft", response_model=DraftOut, tags=["staff inbox"], dependencies=[Depends(staff)])
    def api_gap_draft(request: Request, question: str = Query(..., min_length=1, max_length=1000)) -> DraftOut:
        if not inbox().gap_askers(question, limit=1):
            raise HTTPException(404, "Frågan finns inte bland de obesvarade.")
        return draft_out(draft_for(question.strip(), conversation_language(None, question), request))

    @app.post("/api/inbox/gaps/reply", response_model=GapReplyOut, tags=["staff inbox"],
              dependencies=[Depends(same_origin), Depends(staff)])
    def api_gap_reply(body: GapReplyIn, request: Request) -> GapReplyOut:
        """The reply to every conversation that asked this question (at most 200, newest first)."""
        return GapReplyOut(conversations=gap_reply(body, request))

    @app.post("/api/inbox/examples", response_model=ExampleOut, tags=["staff inbox"],
              dependencies=[Depends(same_origin), Depends(staff)])
    def api_example(body: ExampleIn) -> ExampleOut:
        """Save the request's (or gap's) question as an example question for the paragraph: appended to
        knowledge/questions/staff.jsonl and used by the search at once, without rebuilding the index."""
        return example_in(body)

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
    e = html.escape
    WHO = {"user": "Användare", "bot": "Assistent", "staff": "Personal"}
    VERDICT = {"full": "dokumenten svarar på frågan", "partial": "dokumenten svarar delvis",
               "none": "dokumenten svarar inte på frågan"}
    LANGUAGE = {"sv": "svenska", "en": "engelska"}

    def page(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html><html lang="sv"><head><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width, initial-scale=1"><title>Inkorg – Upphandlingsassistenten</title>'
            '<link rel="stylesheet" href="/static/inbox.css"></head><body><main>' + body + "</main></body></html>",
            status_code=status, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                         "Content-Security-Policy": INBOX_POLICY})

    def login_page(message: str = "", status: int = 401) -> HTMLResponse:
        note = f'<p class="error" role="alert">{e(message)}</p>' if message else ""
        return page('<h1>Inkorg</h1>' + note + '<form method="post" action="/inbox/login" class="login">'
                    '<label for="token">Inloggningsnyckel</label><input id="token" name="token" type="password" '
                    'required autocomplete="current-password"><label for="name">Ditt namn <span class="hint">'
                    '(visas för användaren när du svarar)</span></label><input id="name" name="name" '
                    f'maxlength="60" autocomplete="name"><button type="submit">Logga in</button></form>', status)

    def session_name(request: Request) -> str | None:
        return sessions.name(request.cookies.get(COOKIE, ""))

    def place(c: dict) -> str:
        return citation_place(c, "sv")

    def citation_items(citations: list[dict], save_action: str | None, hidden: dict[str, str]) -> str:
        """The cited paragraphs: number, place, link, quote; a one-click "save as example" per paragraph."""
        items = []
        extra = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in hidden.items())
        for c in citations:
            pid = str(c.get("paragraph_id", ""))
            save = (f'<form method="post" action="{e(save_action)}" class="save">{extra}<input type="hidden" '
                    f'name="paragraph_id" value="{e(pid)}"><button type="submit" class="secondary">Spara frågan som '
                    f'exempelfråga för [{c.get("number")}]</button></form>') if save_action else ""
            items.append(f'<li class="cite"><p class="cite__head"><span class="cite__num">[{c.get("number")}]</span> '
                         f'{e(place(c))} · <a href="/p/{e(url_quote(pid, safe=""))}" target="_blank" rel="noopener">'
                         f'Visa stycket</a></p><blockquote>{e(str(c.get("quote") or ""))}</blockquote>{save}</li>')
        return f'<ol class="cites">{"".join(items)}</ol>' if items else ""

    def reply_form(action: str, key: str, text: str, citations: list[dict], name: str | None, submit: str) -> str:
        boxes = "".join(f'<label class="check"><input type="checkbox" name="cite" value="{e(str(c["paragraph_id"]))}" '
                        f'checked> [{c["number"]}] {e(place(c))}</label>' for c in citations)
        attach = (f'<fieldset class="attach"><legend>Bifoga som källkort i användarens chatt</legend>{boxes}</fieldset>'
                  if boxes else "")
        return (f'<form method="post" action="{e(action)}" class="reply"><label for="reply{key}">Svar till användaren'
                f'{" <span class=hint>(utkast av assistenten – läs och redigera innan du skickar)</span>" if citations else ""}'
                f'</label><textarea id="reply{key}" name="text" required maxlength="4000" rows="12">{e(text)}</textarea>'
                f'{attach}<label for="author{key}">Ditt namn <span class="hint">(visas i chatten)</span></label>'
                f'<input id="author{key}" name="author" value="{e(name or DEFAULT_AUTHOR)}" maxlength="60" required '
                f'autocomplete="name"><button type="submit">{e(submit)}</button></form>')

    def help_block(draft, save_action: str, hidden: dict[str, str]) -> str:
        if draft is None:
            return ('<p class="error">Assistentens förslag kan inte visas just nu (sökindexet är inte laddat). '
                    'Skriv svaret själv eller ladda om sidan om en stund.</p>')
        head = (f'<h4>Assistentens bästa stycken</h4><p class="verdict">Assistentens bedömning: '
                f'{e(VERDICT.get(draft.coverage, draft.coverage))}'
                + (f' (saknas: {e(", ".join(draft.missing))})' if draft.missing else "") + ".</p>")
        if not draft.citations:
            return head + "<p>Inga stycken i dokumenten ligger nära frågan.</p>"
        return head + citation_items([c.payload() for c in draft.citations], save_action, hidden)

    def safe_draft(question: str, language: str, request: Request):
        try:
            return draft_for(question, language, request)
        except HTTPException:
            return None

    def sent_block(r, messages, saved: bool) -> str:
        out = []
        for m in messages:
            cards = citation_items(m.citations, f"/inbox/requests/{r.id}/example", {})
            out.append(f'<div class="sent"><p class="sent__head">Svar från {e(m.author)} ({e(m.created_at)})</p>'
                       f'<p class="sent__text">{e(m.text)}</p>'
                       + (f'<p class="hint">Källkort i svaret – spara frågan som exempelfråga för det stycke svaret '
                          f'använde, så svarar assistenten själv nästa gång:</p>{cards}' if cards else "") + "</div>")
        note = ('<p class="notice" role="status">Frågan sparades som exempelfråga. Assistenten använder den från och '
                'med nästa fråga.</p>') if saved else ""
        return note + "".join(out)


    def request_html(r, request: Request, name: str | None, saved: bool) -> str:
        language = conversation_language(r.language, r.question)
        turns = "".join(f'<li class="turn turn--{e(t.who)}"><span class="who">{WHO[t.who]}</span> {e(t.text)}</li>'
                        for t in r.transcript)
        error = f'<p class="error">{e(r.transcript_error)}</p>' if r.transcript_error else ""
        open_ = r.status == "open"
        sent = sent_block(r, [] if open_ else inbox().staff_messages(r.sender_id), saved)
        draft = safe_draft(r.question, language, request) if open_ else None
        help_ = help_block(draft, f"/inbox/requests/{r.id}/example", {}) if open_ else ""
        form = reply_form(f"/inbox/requests/{r.id}/reply", str(r.id), draft.text if draft else "",
                          [c.payload() for c in draft.citations] if draft else [], name,
                          "Skicka svar" if open_ else "Skicka ett svar till")
        return (f'<section class="request request--{e(r.status)}" aria-labelledby="r{r.id}"><h3 id="r{r.id}">Ärende '
                f'{r.id} <span class="status">({"öppet" if open_ else "besvarat" if r.status == "answered" else e(r.status)})'
                f'</span></h3><p class="meta"><strong>Fråga:</strong> <span class="question">{e(r.question)}</span><br>'
                f"<strong>Kontakt:</strong> {e(r.contact)}<br><strong>Inkom:</strong> {e(r.created_at)} · "
                f"<strong>Språk:</strong> {e(LANGUAGE.get(language, language))}</p>"
                f'<details{" open" if open_ else ""}><summary>Konversationen ({len(r.transcript)} inlägg)</summary>'
                f'<ol class="transcript" tabindex="0" aria-label="Konversationen med användaren">{turns}</ol></details>'
                f'{error}{sent}{help_}{form}</section>')

    def name_bar(name: str | None, cookie_session: bool) -> str:
        if not cookie_session:
            return ""
        if name:
            return (f'<form method="post" action="/inbox/name" class="name"><label for="staffname">Du svarar som'
                    f'</label><input id="staffname" name="name" value="{e(name)}" maxlength="60" required '
                    f'autocomplete="name"><button type="submit" class="secondary">Byt namn</button></form>')
        return ('<form method="post" action="/inbox/name" class="name name--missing"><label for="staffname">Ditt namn '
                '<span class="hint">(visas för användaren när du svarar)</span></label><input id="staffname" '
                'name="name" maxlength="60" required autocomplete="name"><button type="submit">Spara namnet</button></form>')

    @app.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
    def inbox_page(request: Request, before: int | None = Query(None, ge=1, le=2**62),
                   sparad: int | None = Query(None, ge=1, le=2**62)) -> HTMLResponse:
        try:
            staff(request)
        except HTTPException as exc:
            if exc.status_code == 503:
                return page(f"<h1>Inkorgen är avstängd</h1><p>{e(exc.detail)}</p>", 503)
            if exc.status_code == 429:
                return login_page("För många felaktiga inloggningar; försök igen senare.", 429)
            return login_page("Fel inloggningsnyckel." if request.query_params.get("fel") == "1" else "")
        name = session_name(request)
        name_error = ('<p class="error" role="alert">Namnet kunde inte sparas: använd 1–60 tecken, bokstäver, '
                      'mellanslag, bindestreck, apostrof eller punkt.</p>') if request.query_params.get("namnfel") else ""
        parts = ['<header class="top"><h1>Inkorg</h1><form method="post" action="/inbox/logout"><button type="submit" '
                 'class="secondary">Logga ut</button></form></header>', name_error,
                 name_bar(name, sessions.valid(request.cookies.get(COOKIE, ""))),
                 '<h2>Vill prata med en person</h2>']
        size = settings.inbox_page_size
        requests = requests_out(limit=size, before=before)
        if not requests:
            parts.append("<p>Inga ärenden.</p>")
        for r in requests:
            parts.append(request_html(r, request, name, saved=sparad == r.id))
        if len(requests) == size:
            parts.append(f'<p><a href="/inbox?before={requests[-1].id}">Äldre ärenden</a></p>')
        if before is not None:
            parts.append('<p><a href="/inbox">Senaste ärendena</a></p>')
        rows = "".join(f"<tr><td>{'Obesvarad' if g.kind == 'unanswered' else '👎 svar'}</td><td>{e(g.question)}</td>"
                       f"<td>{g.count}</td><td>{e(g.last_seen)}</td><td><a href=\"/inbox/gap?q="
                       f"{e(url_quote(g.question, safe=''))}\">Besvara<span class=\"sr-only\"> ”{e(g.question)}”"
                       f"</span></a></td></tr>" for g in gaps(settings.inbox_page_size * 5))
        parts.append('<h2>Frågor som dokumenten inte täcker</h2><p>De vanligaste; alla finns i '
                     '<a href="/api/inbox/gaps.csv">CSV-filen</a>. ”Besvara” visar assistentens närmaste stycken, ett '
                     'utkast till svar och sparar frågan som exempelfråga.</p><div class="scroll"><table><thead><tr>'
                     '<th scope="col">Typ</th><th scope="col">Fråga</th><th scope="col">Antal</th><th scope="col">Senast'
                     f'</th><th scope="col"><span class="sr-only">Åtgärd</span></th></tr></thead><tbody>{rows}</tbody>'
                     '</table></div>')
        return page("".join(parts))

    def with_hidden(form: str, hidden: dict[str, str]) -> str:
        fields = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in hidden.items())
        head = form.index(">") + 1  # right after the opening <form …>
        return form[:head] + fields + form[head:]

    @app.get("/inbox/gap", response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(staff)])
    def gap_page(request: Request, q: str = Query(..., min_length=1, max_length=1000),
                 sparad: int = Query(0, ge=0, le=1), skickat: int = Query(0, ge=0, le=10_000)) -> HTMLResponse:
        question = q.strip()
        askers = inbox().gap_askers(question)
        if not askers:
            return page('<h1>Besvara en fråga</h1><p>Frågan finns inte bland de obesvarade.</p>'
                        '<p><a href="/inbox">Tillbaka till inkorgen</a></p>', 404)
        language = conversation_language(None, question)
        draft = safe_draft(question, language, request)
        hidden = {"question": question}
        notes = []
        if sparad:
            notes.append('<p class="notice" role="status">Frågan sparades som exempelfråga. Assistenten använder den '
                         'från och med nästa fråga.</p>')
        if skickat:
            notes.append(f'<p class="notice" role="status">Svaret skickades till {skickat} '
                         f'{"konversation" if skickat == 1 else "konversationer"}.</p>')
        form = reply_form("/inbox/gaps/reply", "gap", draft.text if draft else "",
                          [c.payload() for c in draft.citations] if draft else [], session_name(request),
                          f'Skicka svaret till {len(askers)} {"konversation" if len(askers) == 1 else "konversationer"}')
        body = (f'<p><a href="/inbox">← Tillbaka till inkorgen</a></p><h1>Besvara en fråga</h1>{"".join(notes)}'
                f'<section class="request"><p class="meta"><strong>Fråga:</strong> <span class="question">{e(question)}'
                f'</span><br><strong>Ställd i:</strong> {len(askers)} {"konversation" if len(askers) == 1 else "konversationer"}'
                f' · <strong>Språk:</strong> {e(LANGUAGE.get(language, language))}</p>'
                f'{help_block(draft, "/inbox/gaps/example", hidden)}{with_hidden(form, hidden)}</section>')
        return page(body)

    @app.post("/inbox/login", include_in_schema=False, dependencies=[Depends(same_origin)])
    def login(request: Request, token_value: str = Form(..., alias="token", max_length=1000),
              name: str = Form("", max_length=1000)) -> RedirectResponse:
        expected = token()
        refuse_if_throttled(request)
        if not same_token(token_value.strip(), expected):
            throttle.failed(address(request))
            return RedirectResponse("/inbox?fel=1", status_code=303)
        try:
            checked = staff_name(name) if name.strip() else None
        except StaffNameError:
            checked = None  # logged in; the page asks for the name again and says why
        response = RedirectResponse("/inbox?namnfel=1" if name.strip() and checked is None else "/inbox", status_code=303)
        response.set_cookie(COOKIE, sessions.create(checked), max_age=math.ceil(settings.inbox_session_hours * 3600),
                            httponly=True, samesite="strict", path="/",
                            secure=secure_cookie(request))
        return response

    @app.post("/inbox/name", include_in_schema=False, dependencies=[Depends(same_origin), Depends(staff)])
    def set_name(request: Request, name: str = Form(..., max_length=1000)) -> RedirectResponse:
        try:
            sessions.set_name(request.cookies.get(COOKIE, ""), staff_name(name))
        except StaffNameError:
            return RedirectResponse("/inbox?namnfel=1", status_code=303)
        return RedirectResponse("/inbox", status_code=303)

    @app.post("/inbox/logout", include_in_schema=False, dependencies=[Depends(same_origin)])
    def logout(request: Request) -> RedirectResponse:
        sessions.revoke(request.cookies.get(COOKIE, ""))
        response = RedirectResponse("/inbox", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=secure_cookie(request))
        return response

    def signed(request: Request, text: str, author: str, cite: list[str], model=ReplyIn, **extra) -> Any:
        """A page form as the API's body: the name checked (and kept in the session), the text bounded."""
        try:
            body = model(text=text, author=author or DEFAULT_AUTHOR, citations=cite[:MAX_ATTACHED], **extra)
        except ValueError as exc:
            message = str(exc)
            raise HTTPException(422, "Namnet får bara innehålla bokstäver, mellanslag, bindestreck, apostrof och punkt "
                                "(1–60 tecken)." if "author" in message else "Svaret måste vara 1–4000 tecken.") from exc
        if body.author != DEFAULT_AUTHOR:
            sessions.set_name(request.cookies.get(COOKIE, ""), body.author)
        return body

    @app.post("/inbox/requests/{request_id}/reply", include_in_schema=False,
              dependencies=[Depends(same_origin), Depends(staff)])
    def page_reply(request: Request, request_id: int, text: str = Form(..., max_length=4000),
                   author: str = Form(DEFAULT_AUTHOR, max_length=1000),
                   cite: list[str] = Form([])) -> RedirectResponse:
        reply(request_id, signed(request, text, author, cite), request)
        return RedirectResponse(f"/inbox#r{request_id}", status_code=303)

    @app.post("/inbox/requests/{request_id}/example", include_in_schema=False,
              dependencies=[Depends(same_origin), Depends(staff)])
    def page_request_example(request_id: int, paragraph_id: str = Form(..., max_length=MAX_PARAGRAPH_ID_CHARS)
                             ) -> RedirectResponse:
        example_in(ExampleIn(paragraph_id=paragraph_id, request_id=request_id))
        return RedirectResponse(f"/inbox?sparad={request_id}#r{request_id}", status_code=303)

    @app.post("/inbox/gaps/example", include_in_schema=False, dependencies=[Depends(same_origin), Depends(staff)])
    def page_gap_example(question: str = Form(..., max_length=1000),
                         paragraph_id: str = Form(..., max_length=MAX_PARAGRAPH_ID_CHARS)) -> RedirectResponse:
        example_in(ExampleIn(paragraph_id=paragraph_id, gap=question))
        return RedirectResponse(f"/inbox/gap?q={url_quote(question.strip(), safe='')}&sparad=1", status_code=303)

    @app.post("/inbox/gaps/reply", include_in_schema=False, dependencies=[Depends(same_origin), Depends(staff)])
    def page_gap_reply(request: Request, question: str = Form(..., max_length=1000),
                       text: str = Form(..., max_length=4000), author: str = Form(DEFAULT_AUTHOR, max_length=1000),
                       cite: list[str] = Form([])) -> RedirectResponse:
        sent = gap_reply(signed(request, text, author, cite, GapReplyIn, question=question), request)
        return RedirectResponse(f"/inbox/gap?q={url_quote(question.strip(), safe='')}&skickat={sent}", status_code=303)
