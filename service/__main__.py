"""Run the HTTP service: python -m service."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import get_service_settings


def main() -> None:
    settings = get_service_settings()
    docs = "/docs" if settings.api_docs else "/openapi.json"
    print(f"Kunskapstjänsten startar på http://{settings.host}:{settings.port}  (API-dokumentation: {docs})", flush=True)
    # ws="none": the service has no websocket routes, and the websockets release that rasa-sdk's
    # sanic needs (10.x) is older than what uvicorn's websocket support imports.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level, ws="none")


if __name__ == "__main__":
    main()
