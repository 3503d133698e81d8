"""The interactive API documentation (/docs), served from a pinned PyPI package, never a CDN.

FastAPI's own /docs page loads Swagger UI from a CDN and starts it with an inline script: blank
offline, and a policy that allows both would let any script from that CDN run on the inbox's origin.
Here the Swagger UI files come from ``swagger-ui-bundle-v2`` (requirements/app.txt: Swagger UI 5,
which reads the OpenAPI 3.1 schema FastAPI writes), the start-up script is a file of this service,
and the page has its own strict policy: scripts, styles, images and connections from this service
only (images also as data: URIs, which Swagger UI's stylesheet uses), no inline script, no frames.

    GET /docs                      the page
    GET /docs/swagger-init.js      starts Swagger UI on /openapi.json
    GET /docs/assets/{file}        Swagger UI's script, stylesheet and icons (an allow-list)
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

DOCS_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8",
          "favicon-32x32.png": "image/png", "favicon-16x16.png": "image/png"}
INIT_SCRIPT = """/* Starts Swagger UI on this service's schema (a file, so the page needs no inline script). */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
})();
"""


def swagger_ui_dir() -> Path:
    """Where the installed package keeps Swagger UI's files (ImportError when it is not installed)."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def add_docs_routes(app: FastAPI, title: str, openapi_url: str = "/openapi.json") -> None:
    assets = swagger_ui_dir()  # fails at start-up, not at the first visitor, when the package is missing
    missing = [name for name in ASSETS if not (assets / name).is_file()]
    if missing:
        raise RuntimeError(f"Swagger UI files missing in {assets}: {', '.join(missing)} (reinstall "
                           "requirements/app.txt)")
    headers = {"Content-Security-Policy": DOCS_POLICY, "X-Frame-Options": "DENY"}
    from html import escape

    page = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)} – API</title>"
            '<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">'
            '<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head><body>'
            f'<div id="swagger-ui" data-openapi-url="{escape(openapi_url, quote=True)}"></div>'
            '<script src="/docs/assets/swagger-ui-bundle.js"></script>'
            '<script src="/docs/swagger-init.js"></script></body></html>')

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs_page() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    @app.get("/docs/swagger-init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(INIT_SCRIPT, media_type="text/javascript; charset=utf-8")

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> FileResponse:
        if name not in ASSETS:  # an allow-list: no source maps, no index.html, no paths
            raise HTTPException(404, "Not Found")
        return FileResponse(assets / name, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"})
