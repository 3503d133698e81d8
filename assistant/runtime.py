"""The action server's long-lived objects, created once on first use (never at import time)."""

from __future__ import annotations

import logging
import threading
from functools import cached_property

from .settings import AssistantSettings, get_assistant_settings

log = logging.getLogger(__name__)
_MISSING = object()


class Runtime:
    """The engine follows its index folder (index/watch.py): a rebuilt index (the background query
    tuning of a first start, documents added with ``make index``) is loaded aside and swapped in. What is
    derived from an engine (the answerer, the threshold rules) is derived once per engine: for a rebuilt
    one in the loading thread, before the swap, so no question after it waits for that work."""

    DERIVED = ("answerer", "threshold_rules")

    def __init__(self, settings: AssistantSettings | None = None, engine=None, coverage_model=None,
                 engine_loader=None):
        self.settings = settings or get_assistant_settings()
        self._fixed_engine = engine  # tests: this engine, never reloaded
        self._engine_loader = engine_loader  # tests: SearchEngine.load over a fake embedder
        self._coverage_model = coverage_model  # None: the fitted model shipped in assistant/coverage_model.json
        self._lock = threading.Lock()  # held briefly: reading and changing _derived
        self._make_lock = threading.Lock()  # held while deriving (seconds): one derivation at a time
        # id(engine) -> (engine, {name: value}): the engine in use and, while a rebuilt index loads, the new one
        self._derived: dict[int, tuple[object, dict]] = {}
        self._incoming = None  # the rebuilt engine being prepared by the watcher's loading thread

    @cached_property
    def watcher(self):
        from index.watch import IndexWatcher

        return IndexWatcher(self._load_engine, self.settings.index_dir / "manifest.json",
                            self.settings.index_check_interval())

    def _load_engine(self):
        """Load the engine; on a reload also derive for it what the engine in use has (in the watcher's
        loading thread, before the swap)."""
        from index.search import SearchEngine

        log.info("loading the search index from %s", self.settings.index_dir)
        engine = self._engine_loader() if self._engine_loader else SearchEngine.load(self.settings)
        with self._lock:
            wanted = {name for _, values in self._derived.values() for name in values}
            self._incoming = engine
        try:
            for name in self.DERIVED:
                if name in wanted:
                    self._of_engine(name, engine)
        except BaseException:
            self._incoming = None
            raise
        return engine

    @property
    def engine(self):
        return self._fixed_engine if self._fixed_engine is not None else self.watcher.current()

    def _in_use(self):
        if self._fixed_engine is not None:
            return self._fixed_engine
        return self.watcher.loaded() if "watcher" in vars(self) else None

    def ready_engine(self):
        """The engine in use when it and its answerer are built, else None. Never loads anything (a
        readiness probe must not take a minute)."""
        engine = self._in_use()
        return engine if engine is not None and self._lookup(name="answerer", engine=engine) is not _MISSING else None

    def _lookup(self, engine, name: str):
        found = self._derived.get(id(engine))
        return found[1].get(name, _MISSING) if found is not None and found[0] is engine else _MISSING

    def _of_engine(self, name: str, engine=None):
        engine = engine if engine is not None else self.engine
        value = self._lookup(engine, name)
        if value is _MISSING:
            with self._make_lock:
                value = self._lookup(engine, name)
                if value is _MISSING:
                    value = self._make(name, engine)
                    with self._lock:
                        found = self._derived.get(id(engine))
                        if found is None or found[0] is not engine:
                            found = self._derived[id(engine)] = (engine, {})
                        found[1][name] = value
        if len(self._derived) > 1:
            self._forget_replaced()
        return value

    def _forget_replaced(self) -> None:
        """Drop what was derived from engines neither in use nor being prepared (a replaced engine is
        then freed: its answerer holds it)."""
        with self._lock:
            keep = {id(self._in_use()), id(self._incoming)}
            for key in [key for key in self._derived if key not in keep]:
                del self._derived[key]

    def _make(self, name: str, engine):
        if name == "answerer":
            from .answer import Answerer

            return Answerer(engine, self.settings, self._coverage_model)
        from .thresholds import extract_rules

        return extract_rules(engine.index.paragraphs, engine.documents())

    @property
    def answerer(self):
        return self._of_engine("answerer")

    @property
    def threshold_rules(self):
        return self._of_engine("threshold_rules")

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
