"""Settings of the HTTP service process: the knowledge settings plus where to listen."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, field_validator

from assistant.settings import AssistantSettings
from index.settings import PROJECT_ROOT, ProjectPath


class ServiceSettings(AssistantSettings):
    """The web service's settings; it shares the inbox (and its path setting) with the action server."""

    host: str = Field("127.0.0.1", description="Address the HTTP service listens on")
    port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP service")
    log_level: str = Field("info", description="uvicorn log level")
    webchat_socket_url: str = Field("http://127.0.0.1:5005", description="Where the web chat page finds Rasa's "
                                    "socket.io channel (as the user's browser sees it)")
    api_docs: bool = Field(True, description="Serve the interactive API docs at /docs (Swagger UI from the pinned "
                           "swagger-ui-bundle-v2 package, no CDN); /openapi.json is always served")
    web_dir: ProjectPath = Field(PROJECT_ROOT / "web", description="The web chat page's files")
    inbox_token: SecretStr | None = Field(None, description="Login token of the staff inbox; unset = inbox off")
    public_url: str = Field("", max_length=300, description="The address people use when a reverse proxy in front "
                            "terminates TLS (https://chat.example.se): the inbox accepts its form posts from this "
                            "origin, and its cookie is Secure when it is https. Empty = the address requests arrive at")
    inbox_secure_cookie: bool = Field(False, description="Mark the inbox cookie Secure (set true behind an HTTPS "
                                      "proxy; requests that arrive over https get it anyway)")
    inbox_session_hours: float = Field(12.0, gt=0, le=24 * 30, description="A staff login lasts this long (logout "
                                       "and a restart of the service end it sooner)")
    inbox_login_failures: int = Field(5, ge=1, le=1000, description="Wrong inbox tokens one client address may "
                                      "send in 15 minutes before it has to wait")
    trusted_proxies: str = Field("", description="Comma-separated addresses or networks of reverse proxies whose "
                                 "X-Forwarded-For names the client (per-address limits); empty = the socket peer "
                                 "is the client")
    search_per_address_minute: int = Field(300, ge=0, le=100_000, description="Search API requests one client "
                                           "address may make per minute (0 = off); more get 429")
    rasa_url: str = Field("http://127.0.0.1:5005", description="Rasa's HTTP API, for transcripts in the inbox")
    rasa_api_token: SecretStr | None = Field(None, description="Secret of Rasa's HTTP API (JWT HS256, passed to Rasa "
                                             "by environment; make run generates one)")
    inbox_page_size: int = Field(20, ge=1, le=200, description="Requests per page of the inbox page")
    inbox_transcript_cache_seconds: float = Field(30.0, ge=0, le=3600, description="How long the inbox keeps a "
                                                  "transcript fetched from Rasa before asking again")
    webchat_secret: SecretStr | None = Field(None, description="Signs web chat session tokens (shared with Rasa's "
                                             "web chat channel; make run generates one per run when unset)")
    webchat_session_days: float = Field(30.0, gt=0, le=365, description="How long a web chat session token is "
                                        "valid after the page last connected")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body Rasa and the web service "
                                "accept (bytes)")
    max_searches_in_flight: int = Field(8, ge=0, le=10_000, description="API requests (/api/…) in progress at once; "
                                        "past it a request gets 503 + Retry-After at once (0 = no limit)")

    @field_validator("public_url")
    @classmethod
    def _origin_only(cls, value: str) -> str:
        from urllib.parse import urlsplit

        value = value.strip().rstrip("/")
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
            raise ValueError("ASSISTANT_PUBLIC_URL must be an origin like https://chat.example.se (no path)")
        return f"{parts.scheme}://{parts.netloc.lower()}"

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        from assistant.guard import trusted_networks

        trusted_networks(value)  # a typo fails at start-up, not silently at the first request
        return value


@lru_cache(maxsize=1)
def get_service_settings() -> ServiceSettings:
    return ServiceSettings()
