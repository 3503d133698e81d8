"""A search engine that follows its index folder: rebuilt there, it is loaded aside and swapped in.

The index build writes a new folder and renames it into place (index/store.py), so a rebuild shows as
a new manifest file (another inode). ``IndexWatcher.current`` looks at the manifest at most once every
``check_seconds`` (one stat call) and, when it changed, loads the new engine in a background thread;
searches go on with the old engine until the new one is ready, then get the new one. A load that fails
(a damaged or half-written folder, a corpus that no longer matches) is logged and the old engine stays;
the same manifest is not tried twice.

This is how a first start serves before the query tuning is done (the launcher builds the index
without it, then tunes in the background: service/stack.py) and how documents added with
``make index`` reach running processes without a restart.

Nothing here imports Rasa or FastAPI.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Generic, Optional, TypeVar

log = logging.getLogger(__name__)
Engine = TypeVar("Engine")
Signature = tuple[int, int, int]


def manifest_signature(path: Path) -> Optional[Signature]:
    """(inode, size, mtime) of the manifest, or None while there is none (between the build's two renames)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class IndexWatcher(Generic[Engine]):
    def __init__(self, load: Callable[[], Engine], manifest: Optional[Path], check_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, background: bool = True) -> None:
        self._load, self.manifest, self.check_seconds, self._clock = load, manifest, check_seconds, clock
        self._background = background  # tests load in the calling thread
        # manifest None: the first engine is kept (an engine not loaded from an index folder)
        self._engine: Optional[Engine] = None
        self._signature: Optional[Signature] = None  # of the manifest the engine (or the failed attempt) came from
        self._checked = float("-inf")
        self._loading = False
        self._lock = threading.Lock()
        self._first_lock = threading.Lock()
        self.reloads = 0

    def initial(self) -> Engine:
        """Load the first engine in the calling thread (its errors propagate: nothing to fall back to)."""
        signature = manifest_signature(self.manifest) if self.manifest is not None else None
        engine = self._load()
        with self._lock:
            self._engine, self._signature, self._checked = engine, signature, self._clock()
        return engine

    def loaded(self) -> Optional[Engine]:
        """The engine in use, or None before the first load; never loads or looks at the folder."""
        return self._engine

    def current(self) -> Engine:
        """The engine to use now; starts loading a rebuilt index when it is time to look."""
        if self._engine is None:
            with self._first_lock:  # concurrent first callers load once
                if self._engine is None:
                    return self.initial()
        now = self._clock()
        if self.manifest is None or now - self._checked < self.check_seconds:
            return self._engine
        with self._lock:
            if now - self._checked < self.check_seconds or self._loading:
                return self._engine
            self._checked = now
            signature = manifest_signature(self.manifest)
            if signature is None or signature == self._signature:
                return self._engine
            self._loading = True
        if self._background:
            threading.Thread(target=self._reload, args=(signature,), name="reload-index", daemon=True).start()
        else:
            self._reload(signature)
        return self._engine

    def _reload(self, signature: Signature) -> None:
        started = time.perf_counter()
        try:
            engine = self._load()
        except Exception:  # noqa: BLE001 - logged; searches go on with the engine they have
            log.exception("the rebuilt index in %s could not be loaded; still using the previous one", self.manifest.parent)
            with self._lock:
                self._signature, self._loading = signature, False  # not again for this build
            return
        with self._lock:
            self._engine, self._signature, self._loading = engine, signature, False
            self.reloads += 1
        log.info("rebuilt index loaded from %s in %.1f s", self.manifest.parent, time.perf_counter() - started)
