"""The HTTP service (FastAPI): knowledge search API, later the web chat."""
