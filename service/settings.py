"""Settings of the HTTP service process: the knowledge settings plus where to listen."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from index.settings import Settings


class ServiceSettings(Settings):
    host: str = Field("127.0.0.1", description="Address the HTTP service listens on")
    port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP service")
    log_level: str = Field("info", description="uvicorn log level")


@lru_cache(maxsize=1)
def get_service_settings() -> ServiceSettings:
    return ServiceSettings()
