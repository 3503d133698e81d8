"""/docs in a real browser (Debian's chromium via Playwright), offline and under its own
Content-Security-Policy: Swagger UI comes from the pinned package, renders every operation, runs a
request, and the page makes no request to another host and breaks no rule of its policy (issue 10:
"/docs served from packaged assets (no CDN) with a CSP"; issue 12: "/docs is blank offline")."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlparse

import httpx
import pytest
from test_web import browser  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow


@pytest.fixture
def docs_service(tiny_index, fake_embedder, tmp_path):
    """The web service on a real port (uvicorn, configured as `python -m service` does), tiny index."""
    import uvicorn

    from index.search import SearchEngine
    from service.__main__ import server_config
    from service.app import create_app
    from service.settings import ServiceSettings
    from test_addresses import _free_port

    settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3",
                                  "rasa_url": "http://127.0.0.1:9", "port": _free_port(), "log_level": "warning"})
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    server = uvicorn.Server(server_config(settings, app))
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{settings.port}"
    for _ in range(200):
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    yield base
    server.should_exit = True


def test_docs_work_offline_under_their_content_security_policy(browser, docs_service):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # the page's CSP stays on
    page = context.new_page()
    own = urlparse(docs_service).netloc
    elsewhere, errors = [], []

    def route(r):  # offline: anything not from the service itself is refused (and recorded)
        if urlparse(r.request.url).netloc == own or r.request.url.startswith("data:"):
            r.continue_()
        else:
            elsewhere.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(docs_service + "/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert {"/api/search", "/api/documents", "/health"} <= {p.replace("\u200b", "").strip() for p in paths}
        # Run one request from the page: connect-src 'self' lets Swagger UI call the API.
        block = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="/api/documents")).first
        block.locator(".opblock-summary").click()
        block.locator("button.try-out__btn").click()
        block.locator("button.execute").click()
        status = block.locator(".live-responses-table tr.response .response-col_status").first
        status.wait_for(timeout=30_000)
        assert status.inner_text().strip() == "200"
        assert "Handbok om IOP" in block.locator(".live-responses-table .microlight, .live-responses-table pre").first.inner_text()
    finally:
        context.close()
    assert elsewhere == [], f"requests to other hosts: {elsewhere}"
    assert [e for e in errors if "Content Security Policy" in e or "Refused" in e] == [], errors
    assert errors == [], errors
