"""Run the HTTP service: python -m service."""

from __future__ import annotations

import logging

import uvicorn

from .app import create_app
from .settings import ServiceSettings, get_service_settings


def server_config(settings: ServiceSettings, app=None) -> uvicorn.Config:
    """How uvicorn serves the app.

    ws="none": the service has no websocket routes, and the websockets release that rasa-sdk's sanic
    needs (10.x) is older than what uvicorn's websocket support imports. proxy_headers=False: uvicorn
    would otherwise believe X-Forwarded-For from 127.0.0.1 (its default FORWARDED_ALLOW_IPS), so any
    local client could choose its own address; the service reads that header itself, and only from
    the proxies in ASSISTANT_TRUSTED_PROXIES (assistant.guard.client_address).
    """
    return uvicorn.Config(app if app is not None else create_app(settings), host=settings.host, port=settings.port,
                          log_level=settings.log_level, ws="none", proxy_headers=False)


def configure_logging(settings: ServiceSettings) -> None:
    """The app's own loggers (index loaded, a rebuilt index swapped in, search unavailable) at the service's
    log level, in the action server's format; uvicorn configures only its own loggers."""
    level = getattr(logging, settings.log_level.upper(), logging.DEBUG)  # uvicorn's "trace": everything
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(max(level, logging.WARNING))  # which CPU build it tried, at every start


def main() -> None:
    settings = get_service_settings()
    configure_logging(settings)
    docs = "/docs" if settings.api_docs else "/openapi.json"
    print(f"Kunskapstjänsten startar på http://{settings.host}:{settings.port}  (API-dokumentation: {docs})", flush=True)
    uvicorn.Server(server_config(settings)).run()


if __name__ == "__main__":
    main()
