"""Running processes take a rebuilt index in without a restart (index/watch.py, assistant/runtime.py,
service/app.py), and the launcher tunes an untuned index in the background (service/stack.py)."""

from __future__ import annotations

import gc
import json
import sys
import textwrap
import time
import weakref
from pathlib import Path

import pytest

from index.store import build_index
from index.watch import IndexWatcher, manifest_signature


def replace_manifest(folder: Path, text: str) -> None:
    """As the index build does: a new file renamed into place (a new inode)."""
    tmp = folder / "manifest.json.new"
    tmp.write_text(text)
    tmp.rename(folder / "manifest.json")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_watcher_swaps_in_a_rebuilt_index_and_keeps_the_old_one_when_the_new_one_fails(tmp_path):
    replace_manifest(tmp_path, "1")
    built = iter(["engine 1", "engine 2", RuntimeError("half-written"), "engine 4"])
    loads = []

    def load():
        item = next(built)
        loads.append(item)
        if isinstance(item, Exception):
            raise item
        return item

    clock = Clock()
    watcher = IndexWatcher(load, tmp_path / "manifest.json", check_seconds=5.0, clock=clock, background=False)
    assert watcher.current() == "engine 1"
    replace_manifest(tmp_path, "2")
    clock.now = 4.0
    assert watcher.current() == "engine 1"  # not looked at before check_seconds
    clock.now = 5.0
    assert watcher.current() == "engine 2" and watcher.reloads == 1
    clock.now = 20.0
    assert watcher.current() == "engine 2" and len(loads) == 2  # same manifest: not loaded again
    replace_manifest(tmp_path, "3")
    clock.now = 30.0
    assert watcher.current() == "engine 2"  # the new index failed to load: the old one answers
    clock.now = 40.0
    assert watcher.current() == "engine 2" and len(loads) == 3  # and that build is not tried again
    (tmp_path / "manifest.json").unlink()  # between the build's two renames
    clock.now = 50.0
    assert watcher.current() == "engine 2" and len(loads) == 3
    replace_manifest(tmp_path, "4")
    clock.now = 60.0
    assert watcher.current() == "engine 4" and watcher.reloads == 2


def test_the_watcher_loads_in_the_background_while_searches_go_on(tmp_path):
    import threading

    replace_manifest(tmp_path, "1")
    release = threading.Event()
    engines = iter(["old", "new"])

    def load():
        engine = next(engines)
        if engine == "new":
            assert release.wait(10)
        return engine

    watcher = IndexWatcher(load, tmp_path / "manifest.json", check_seconds=0.0)
    assert watcher.current() == "old"
    replace_manifest(tmp_path, "2")
    assert watcher.current() == "old"  # the new one is loading
    assert watcher.current() == "old"
    release.set()
    deadline = time.monotonic() + 10
    while watcher.current() != "new" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watcher.current() == "new" and watcher.reloads == 1


def test_manifest_signature_changes_with_a_rebuild(tmp_path):
    assert manifest_signature(tmp_path / "manifest.json") is None
    replace_manifest(tmp_path, "same")
    first = manifest_signature(tmp_path / "manifest.json")
    replace_manifest(tmp_path, "same")
    assert manifest_signature(tmp_path / "manifest.json") != first


EXTRA_DOC = """
    Nytt dokument om sociala klausuler

    Sociala klausuler i kontrakt kan kräva att leverantören anställer långtidsarbetslösa under avtalstiden.
"""


def add_document_and_rebuild(settings, embedder) -> None:
    (settings.knowledge_dir / "klausuler.txt").write_text(textwrap.dedent(EXTRA_DOC).strip() + "\n", encoding="utf-8")
    manifest = settings.knowledge_dir / "manifest.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + textwrap.dedent("""
        [[documents]]
        id = "klausuler"
        file = "klausuler.txt"
        title = "Sociala klausuler"
        publisher = "Testförlaget"
        year = 2024
    """), encoding="utf-8")
    build_index(settings.knowledge_dir, settings.index_dir, embedder)


def test_the_action_servers_runtime_answers_from_a_rebuilt_index_without_a_restart(tiny_index, fake_embedder,
                                                                                    monkeypatch):
    """Documents added and the index rebuilt while it runs: the next answers cite the new document,
    and the answerer and threshold rules are derived again from the new engine (once, not per call)."""
    from assistant.runtime import Runtime, Served
    from assistant.settings import AssistantSettings
    from index.search import SearchEngine

    settings = AssistantSettings(**tiny_index.model_dump())
    runtime = Runtime(settings, engine_loader=lambda: SearchEngine.load(settings, fake_embedder))
    made = []
    make = Served._make
    monkeypatch.setattr(Served, "_make", lambda self, name: made.append(name) or make(self, name))
    clock = Clock()
    runtime.__dict__["watcher"] = IndexWatcher(runtime._load, settings.index_dir / "manifest.json",
                                               clock=clock, background=False)
    assert runtime.ready_engine() is None  # nothing loaded yet, and the probe loads nothing
    first, rules = runtime.answerer, runtime.threshold_rules
    assert runtime.answerer is first and runtime.threshold_rules is rules and made == ["answerer", "threshold_rules"]
    old = runtime.ready_engine()
    assert old is runtime.engine
    old_served = weakref.ref(runtime.watcher.loaded())
    assert all("klausul" not in h.text for h in runtime.engine.search("sociala klausuler långtidsarbetslösa", 5).hits)
    add_document_and_rebuild(settings, fake_embedder)
    clock.now = 10.0
    new = runtime.watcher.current().engine  # the loader (inline here) derived both for the new engine before the swap
    assert new is not old and made == ["answerer", "threshold_rules"] * 2 and runtime.ready_engine() is new
    answerer = runtime.answerer
    assert answerer is not first and answerer.engine is new and runtime.answerer is answerer
    hits = runtime.engine.search("sociala klausuler långtidsarbetslösa", 3).hits
    assert hits and "långtidsarbetslösa" in hits[0].text
    assert runtime.threshold_rules is not rules and runtime.threshold_rules is runtime.threshold_rules
    assert len(made) == 4
    gc.collect()
    assert old_served() is None  # what was derived from the old engine is let go with the swap


def test_the_search_service_answers_from_a_rebuilt_index_without_a_restart(tiny_index, fake_embedder):
    from index.search import SearchEngine
    from service.app import EngineHolder

    holder = EngineHolder(lambda: SearchEngine.load(tiny_index, fake_embedder), tiny_index.index_dir / "manifest.json",
                          check_seconds=0.0)
    holder.load()
    before = holder.get()
    add_document_and_rebuild(tiny_index, fake_embedder)
    deadline = time.monotonic() + 20
    while holder.get() is before and time.monotonic() < deadline:
        time.sleep(0.05)
    after = holder.get()
    assert after is not before
    assert any(d.title == "Sociala klausuler" for d in after.documents())
    assert not any(d.title == "Sociala klausuler" for d in before.documents())


# -- the launcher's background tuning (service/stack.py) ------------------------------------------------
def write_manifest(index_dir: Path, tuned: bool, questions: int) -> None:
    from index.store import FORMAT_VERSION, read_manifest

    index_dir.mkdir(parents=True, exist_ok=True)
    (index_dir / "manifest.json").write_text(json.dumps({
        "format_version": FORMAT_VERSION, "pipeline_version": "x", "versions": {}, "built_at": "now", "build_seconds": 1.0, "model": "m",
        "dimension": 4, "corpus_hash": "h", "paragraph_count": 1, "vector_count": 1, "question_count": questions,
        "query_tuning": {"config": {}, "digest": "d", "file": "f", "sha256": "s", "questions": questions,
                         "steps": 1, "seconds": 1.0, "first_loss": 1.0, "last_loss": 0.5} if tuned else None,
        "documents": [],
    }))
    read_manifest(index_dir)  # the test writes what the launcher reads


@pytest.mark.parametrize("tuned, questions, epochs, wanted", [
    (False, 10, 3, True),   # built with --defer-tuning
    (True, 10, 3, False),   # already tuned
    (False, 0, 3, False),   # no example questions: nothing to tune on
    (False, 10, 0, False),  # tuning turned off
])
def test_the_launcher_tunes_only_an_index_left_untuned(tmp_path, tuned, questions, epochs, wanted):
    from service.stack import StackSettings, tuning_wanted

    write_manifest(tmp_path / "index", tuned, questions)
    settings = StackSettings(index_dir=tmp_path / "index", query_tuning_epochs=epochs)
    assert tuning_wanted(settings) is wanted
    assert tuning_wanted(StackSettings(index_dir=tmp_path / "missing")) is False


def test_background_tuning_reports_its_end_once_and_is_stopped_with_the_stack(tmp_path):
    from service.stack import BackgroundTuning

    outcomes = {}
    for code in (0, 3):
        job = BackgroundTuning(tmp_path, {})
        job.command = [sys.executable, "-c", f"import sys; print('tuning'); sys.exit({code})"]
        job.start()
        deadline = time.monotonic() + 20
        while (line := job.poll()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        outcomes[code] = line
        assert job.poll() is None  # reported once
    assert outcomes[0].startswith("Query tuning done")
    assert outcomes[3].startswith("Query tuning failed (exit 3)") and "index-tuning.log" in outcomes[3]
    assert "tuning" in (tmp_path / "index-tuning.log").read_text()
    sleeper = BackgroundTuning(tmp_path, {})
    sleeper.command = [sys.executable, "-c", "import time; time.sleep(60)"]
    sleeper.start()
    sleeper.stop()
    assert sleeper.popen.poll() is not None
