"""The action server's long-lived objects, created once on first use (never at import time)."""

from __future__ import annotations

import logging
import threading
from functools import cached_property

from .settings import AssistantSettings, get_assistant_settings

log = logging.getLogger(__name__)


class Served:
    """One search engine and what is derived from it (the answerer, the threshold rules), each made once
    on first use and let go with the engine when a rebuilt index replaces it."""

    DERIVED = ("answerer", "threshold_rules")

    def __init__(self, engine, settings: AssistantSettings, coverage_model=None):
        self.engine, self._settings, self._coverage_model = engine, settings, coverage_model
        self._made: dict[str, object] = {}
        self._lock = threading.Lock()  # held while deriving (seconds): each value is made once

    def made(self) -> list[str]:
        """The names derived so far."""
        return [name for name in self.DERIVED if name in self._made]

    def derived(self, name: str):
        if name not in self._made:
            with self._lock:
                if name not in self._made:
                    self._made[name] = self._make(name)
        return self._made[name]

    def _make(self, name: str):
        if name == "answerer":
            from .answer import Answerer

            return Answerer(self.engine, self._settings, self._coverage_model)
        if name == "threshold_rules":
            from .thresholds import extract_rules

            return extract_rules(self.engine.index.paragraphs, self.engine.documents())
        raise KeyError(name)

    @property
    def answerer(self):
        return self.derived("answerer")

    @property
    def threshold_rules(self):
        return self.derived("threshold_rules")


class Runtime:
    """The engine follows its index folder (index/watch.py): a rebuilt index (the background query
    tuning of a first start, documents added with ``make index``) is loaded aside and swapped in. The
    watcher holds a ``Served`` (engine and derived values): for a rebuilt index the loading thread
    derives what the one in use has derived before the swap, so no question after it waits for that work."""

    def __init__(self, settings: AssistantSettings | None = None, engine=None, coverage_model=None,
                 engine_loader=None):
        self.settings = settings or get_assistant_settings()
        self._coverage_model = coverage_model  # None: the fitted model shipped in assistant/coverage_model.json
        self._engine_loader = engine_loader  # tests: SearchEngine.load over a fake embedder
        # tests: this engine, never reloaded
        self._fixed = Served(engine, self.settings, coverage_model) if engine is not None else None

    @cached_property
    def watcher(self):
        from index.watch import IndexWatcher

        return IndexWatcher(self._load, self.settings.index_dir / "manifest.json", self.settings.index_check_interval())

    def _load(self) -> Served:
        """Load the engine; on a reload also derive for it what the one in use has (in the watcher's loading thread)."""
        from index.search import SearchEngine

        log.info("loading the search index from %s", self.settings.index_dir)
        engine = self._engine_loader() if self._engine_loader else SearchEngine.load(self.settings)
        served = Served(engine, self.settings, self._coverage_model)
        in_use = self._in_use()
        for name in in_use.made() if in_use is not None else ():
            served.derived(name)
        return served

    def _served(self) -> Served:
        return self._fixed if self._fixed is not None else self.watcher.current()

    def _in_use(self) -> Served | None:
        if self._fixed is not None:
            return self._fixed
        return self.watcher.loaded() if "watcher" in vars(self) else None

    @property
    def engine(self):
        return self._served().engine

    def ready_engine(self):
        """The engine in use when it and its answerer are built, else None. Never loads anything (a
        readiness probe must not take a minute)."""
        served = self._in_use()
        return served.engine if served is not None and "answerer" in served.made() else None

    @property
    def answerer(self):
        return self._served().answerer

    @property
    def threshold_rules(self):
        return self._served().threshold_rules

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
