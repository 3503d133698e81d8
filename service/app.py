"""HTTP service over the knowledge index (FastAPI).

    POST /api/search                 {"query": str, "k": int} -> {"hits": [...], "took_ms": float}
    GET  /api/documents              the documents in the index
    GET  /api/paragraphs/{id}        one paragraph with its neighbours
    GET  /health                     ready or not, and why (index, model)
    GET  /health/live, /health/ready liveness, and readiness with each dependency (assistant/health.py)
    GET  /openapi.json               OpenAPI schema
    GET  /docs                       the interactive page (Swagger UI from a pinned package, service/docs.py;
                                     ASSISTANT_API_DOCS=false turns it off)

The model and the index load once, at start-up, in the background; until they are ready (or if
they cannot load) the API answers 503 with the reason and the command that fixes it.
"""

from __future__ import annotations

import logging
from functools import lru_cache
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from assistant.guard import address_key, trusted_networks
from assistant.shared_limits import rate_limiter
from index.documents import KnowledgeError
from index.search import Hit, QueryError, SearchEngine
from index.store import DocumentInfo, IndexUnavailableError
from index.watch import IndexWatcher

from .admission import InFlightLimit
from .limits import BodyLimit, SecurityHeaders, content_security_policy
from .settings import ServiceSettings, get_service_settings

log = logging.getLogger("assistant.service")


class SearchRequest(BaseModel):
    query: str = Field(..., description="The question, in Swedish or English", examples=["Vad är IOP?"])
    k: int = Field(5, description="How many paragraphs to return")


class SearchResponse(BaseModel):
    hits: list[Hit] = Field(description="Paragraphs in rank order")
    took_ms: float


class ParagraphResponse(BaseModel):
    paragraph: Hit
    before: list[Hit]
    after: list[Hit]


class Health(BaseModel):
    status: str
    detail: str | None = None
    model: str | None = None
    paragraphs: int | None = None
    documents: int | None = None
    index_built_at: str | None = None


class EngineHolder:
    """Loads the search engine once (in a background thread) and remembers why it failed. With a
    ``manifest`` the engine then follows its index folder (index/watch.py): a rebuilt index is loaded
    aside and swapped in while the old one keeps answering."""

    def __init__(self, factory: Callable[[], SearchEngine], manifest: Path | None = None, check_seconds: float = 5.0):
        self._watcher = IndexWatcher(factory, manifest, check_seconds)  # no manifest (tests' factories): never reloaded
        self.error: str | None = None
        self._ready = threading.Event()

    def load(self) -> None:
        log.info("loading the search index")
        try:
            engine = self._watcher.initial()
            log.info("index loaded: %d paragraphs", len(engine.index.paragraphs))
        except (IndexUnavailableError, KnowledgeError) as exc:
            self.error = str(exc)
            log.error("search is unavailable: %s", exc)
        except Exception as exc:  # noqa: BLE001 - any start-up failure must be reported, not hidden
            self.error = f"{exc.__class__.__name__}: {exc}"
            log.exception("search failed to start")
        finally:
            self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def engine(self) -> SearchEngine | None:
        """The engine in use (a rebuilt index swapped in), or None before the first load and after it failed."""
        return self._watcher.current() if self._watcher.loaded() is not None else None

    def get(self, timeout: float = 120.0) -> SearchEngine:
        if not self._ready.wait(timeout):
            raise HTTPException(503, "Sökindexet laddas fortfarande; försök igen om en stund.")
        engine = self.engine
        if engine is None:
            raise HTTPException(503, self.error or "Sökindexet kunde inte laddas.")
        return engine


def create_app(settings: ServiceSettings | None = None, engine_factory: Callable[[], SearchEngine] | None = None) -> FastAPI:
    settings = settings or get_service_settings()
    holder = EngineHolder(engine_factory or (lambda: SearchEngine.load(settings)),
                          None if engine_factory else settings.index_dir / "manifest.json",
                          settings.index_check_interval())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=holder.load, name="load-index", daemon=True).start()
        yield

    app = FastAPI(
        title="Upphandlingsassistenten – kunskapssök",
        version="0.1.0",
        description="Search the paragraphs of the assistant's source documents (IOP, reserved contracts, "
        "framework agreements, thresholds). Every hit is a quotable paragraph with its document and year.",
        lifespan=lifespan,
        # FastAPI's own /docs page loads Swagger UI from a CDN with an inline script: never; service/docs.py
        # serves it from a pinned package instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine_holder = holder
    app.add_middleware(SecurityHeaders, policy=content_security_policy(settings.webchat_socket_url))
    if settings.api_docs:
        from .docs import add_docs_routes

        add_docs_routes(app, app.title)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(InFlightLimit, limit=settings.max_searches_in_flight)  # outermost: refuse before any work

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", []) if x != "body")
            problems.append(f"{where or 'body'}: {err.get('msg')}")
        return JSONResponse(
            status_code=422,
            content={"detail": "Ogiltig förfrågan: " + "; ".join(problems), "errors": jsonable_encoder(exc.errors())},
        )

    trusted = trusted_networks(settings.trusted_proxies)
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    search_limiter = rate_limiter(settings.search_per_address_minute, "search-address", redis_url)
    search_lock = threading.Lock()

    @app.post("/api/search", response_model=SearchResponse, tags=["search"],
              responses={429: {"description": "Too many searches from this address; see Retry-After"}})
    def search(body: SearchRequest, request: Request) -> SearchResponse:
        # Each search embeds the query (CPU): one client address gets a share, not the whole service.
        from .staff import client_address

        with search_lock:
            allowed = search_limiter.allow(address_key(client_address(request, trusted)))
        if not allowed:
            raise HTTPException(429, "För många sökningar från din adress; vänta en minut och försök igen.",
                                headers={"Retry-After": "60"})
        engine = holder.get()
        try:
            result = engine.search(body.query, body.k)
        except QueryError as exc:
            raise HTTPException(422, str(exc)) from exc
        return SearchResponse(hits=result.hits, took_ms=result.took_ms)

    @app.get("/api/documents", response_model=list[DocumentInfo], tags=["documents"])
    def documents() -> list[DocumentInfo]:
        return holder.get().documents()

    @app.get("/api/paragraphs/{paragraph_id}", response_model=ParagraphResponse, tags=["documents"])
    def paragraph(paragraph_id: str, neighbours: int = 1) -> ParagraphResponse:
        if not 0 <= neighbours <= 10:
            raise HTTPException(422, "neighbours måste vara mellan 0 och 10.")
        engine = holder.get()
        ctx = engine.paragraph(paragraph_id, neighbours)
        if ctx is None:
            raise HTTPException(404, f"Stycket {paragraph_id!r} finns inte i indexet.")
        return ParagraphResponse(paragraph=ctx.paragraph, before=ctx.before, after=ctx.after)

    from assistant.inbox import Inbox

    from .staff import add_staff_routes
    from .web import add_web_routes

    @lru_cache(maxsize=1)
    def inbox() -> Inbox:  # opened on first use, shared by the web chat and the staff inbox
        return Inbox(settings.inbox_db)

    add_web_routes(app, settings, holder, inbox)
    add_staff_routes(app, settings, inbox, holder)

    @app.get("/health/live", tags=["health"])
    def live() -> dict[str, str]:
        """Liveness: the process serves HTTP (restart it when this fails)."""
        return {"status": "alive"}

    @app.get("/health/ready", tags=["health"])
    def ready() -> JSONResponse:
        """Readiness: the index is loaded (required) and the inbox database answers (optional: without it
        the search and the web page still work)."""
        from assistant.health import Check, check, inbox_probe, report

        if not holder.ready:
            index = Check("index", False, "loading")
        elif holder.engine is None:
            index = Check("index", False, holder.error or "could not be loaded")
        else:
            index = Check("index", True, f"{holder.engine.index.manifest.paragraph_count} paragraphs")
        code, body = report([index, check("inbox", inbox_probe(inbox), required=False)])
        return JSONResponse(status_code=code, content=body)

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> JSONResponse:
        if not holder.ready:
            return JSONResponse(status_code=503, content=Health(status="loading").model_dump())
        if holder.engine is None:
            return JSONResponse(status_code=503, content=Health(status="unavailable", detail=holder.error).model_dump())
        m = holder.engine.index.manifest
        return JSONResponse(
            content=Health(
                status="ok", model=m.model, paragraphs=m.paragraph_count, documents=len(m.documents),
                index_built_at=m.built_at,
            ).model_dump()
        )

    return app
