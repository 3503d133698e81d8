"""The action server's long-lived objects, created once on first use (never at import time)."""

from __future__ import annotations

import logging
import threading
from functools import cached_property

from .settings import AssistantSettings, get_assistant_settings

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: AssistantSettings | None = None, engine=None, coverage_model=None):
        self.settings = settings or get_assistant_settings()
        self._engine = engine
        self._coverage_model = coverage_model  # None: the fitted model shipped in assistant/coverage_model.json
        self._lock = threading.Lock()

    @property
    def engine(self):
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    from index.search import SearchEngine

                    log.info("loading the search index from %s", self.settings.index_dir)
                    self._engine = SearchEngine.load(self.settings)
        return self._engine

    @cached_property
    def answerer(self):
        from .answer import Answerer

        return Answerer(self.engine, self.settings, self._coverage_model)

    @cached_property
    def threshold_rules(self):
        from .thresholds import extract_rules

        return extract_rules(self.engine.index.paragraphs, self.engine.documents())

    @cached_property
    def inbox(self):
        from .inbox import Inbox

        redis_url = self.settings.redis_url.get_secret_value() if self.settings.redis_url else None
        return Inbox(self.settings.inbox_db, self.settings.inbox_limits(), redis_url)


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = Runtime()
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Tests install a runtime over a tiny index; None goes back to the default."""
    global _runtime
    _runtime = runtime
