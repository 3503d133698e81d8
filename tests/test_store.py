"""Index build, save/load round trip, and the errors for missing, mismatched or corrupt indexes."""

from __future__ import annotations

import json

import pytest

from index.search import SearchEngine
from index.store import (
    REBUILD_HINT, IndexCorruptError, IndexMismatchError, IndexMissingError, build_index, load_index, read_manifest,
)


def test_build_writes_manifest_and_round_trips(tiny_index, fake_embedder):
    manifest = read_manifest(tiny_index.index_dir)
    assert manifest.model == "fake-embedder" and manifest.dimension == 32
    assert {d.doc_id for d in manifest.documents} == {"iop", "troskel", "reserverat"}
    assert manifest.paragraph_count >= 4 and manifest.vector_count == manifest.paragraph_count
    assert len(manifest.corpus_hash) == 64 and "faiss-cpu" in manifest.versions
    docs = {d.doc_id: d for d in manifest.documents}
    assert docs["iop"].title == "Handbok om IOP" and docs["iop"].year == 2024
    assert docs["reserverat"].title == "Reserverade kontrakt"  # from its Markdown heading

    first = SearchEngine.load(tiny_index, fake_embedder).search("ramavtal leverantörer", 3)
    # a second, independent load of the saved files gives the same ranking
    again = SearchEngine.load(tiny_index, fake_embedder).search("ramavtal leverantörer", 3)
    assert [h.paragraph_id for h in first.hits] == [h.paragraph_id for h in again.hits]
    assert "ramavtal" in first.hits[0].text


def test_rebuild_of_unchanged_corpus_keeps_ids(tiny_index, fake_embedder):
    before = [json.loads(l)["paragraph_id"] for l in (tiny_index.index_dir / "paragraphs.jsonl").read_text().splitlines()]
    build_index(tiny_index.knowledge_dir, tiny_index.index_dir, fake_embedder)
    after = [json.loads(l)["paragraph_id"] for l in (tiny_index.index_dir / "paragraphs.jsonl").read_text().splitlines()]
    assert before == after


def test_missing_index_names_file_and_command(tiny_settings):
    with pytest.raises(IndexMissingError) as err:
        load_index(tiny_settings.index_dir, "fake-embedder")
    assert "manifest.json" in str(err.value) and REBUILD_HINT in str(err.value)


def test_index_built_with_another_model_is_refused(tiny_index):
    with pytest.raises(IndexMismatchError) as err:
        load_index(tiny_index.index_dir, "another-model")
    msg = str(err.value)
    assert str(tiny_index.index_dir / "manifest.json") in msg and "another-model" in msg and REBUILD_HINT in msg


def test_index_of_another_corpus_is_refused(tiny_index):
    (tiny_index.knowledge_dir / "ny.md").write_text("# Ny\n\nEtt nytt dokument om upphandling.\n", encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="rebuild with"):
        load_index(tiny_index.index_dir, "fake-embedder", tiny_index.knowledge_dir)


def test_dimension_mismatch_is_refused(tiny_index, fake_embedder):
    class Wider(type(fake_embedder)):
        dimension = 64

    with pytest.raises(IndexMismatchError, match="dense.faiss"):
        SearchEngine.load(tiny_index, Wider())


@pytest.mark.parametrize("name", ["dense.faiss", "paragraphs.jsonl", "manifest.json", "sentences.faiss", "sentences.json"])
def test_corrupt_files_are_reported_with_their_name(tiny_index, name):
    path = tiny_index.index_dir / name
    path.write_bytes(b"\x00garbage\xff" * 3)
    with pytest.raises((IndexCorruptError, IndexMismatchError)) as err:
        load_index(tiny_index.index_dir, "fake-embedder")
    assert name in str(err.value) and REBUILD_HINT in str(err.value)


def test_deleted_file_is_reported(tiny_index):
    (tiny_index.index_dir / "paragraphs.jsonl").unlink()
    with pytest.raises(IndexCorruptError, match="paragraphs.jsonl"):
        load_index(tiny_index.index_dir, "fake-embedder")


def test_cli_reports_a_missing_index(tmp_path, monkeypatch, capsys):
    from index.__main__ import main
    from index.settings import get_settings

    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "nothing"))
    get_settings.cache_clear()
    try:
        assert main(["stats"]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "manifest.json" in err and "python -m index build" in err


def test_every_sentence_of_every_paragraph_is_embedded(tiny_index, fake_embedder):
    from index.paragraphs import sentence_units

    index = load_index(tiny_index.index_dir, "fake-embedder")
    expected = [s for p in index.paragraphs for s in sentence_units(p.text)]
    assert index.sentences == expected and len(index.sentence_owners) == len(expected)
    assert index.sentence_index.ntotal == len(expected) and index.sentence_index.d == fake_embedder.dimension
    j = index.sentences.index(next(s for s in expected if "ramavtal är ett avtal" in s))
    assert "ramavtal är ett avtal" in index.paragraphs[index.sentence_owners[j]].text
    # The vector is the sentence's own, not its paragraph's.
    assert abs(float(index.sentence_index.reconstruct(j) @ fake_embedder.encode_passages([expected[j]])[0]) - 1.0) < 1e-5


def test_sentences_that_do_not_match_their_vectors_are_refused(tiny_index):
    import json

    meta = tiny_index.index_dir / "sentences.json"
    data = json.loads(meta.read_text(encoding="utf-8"))
    data["texts"].pop()
    data["owners"].pop()
    meta.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="sentences.faiss"):
        load_index(tiny_index.index_dir, "fake-embedder")


@pytest.mark.parametrize("upgrade", [False, True])
def test_build_if_needed_keeps_an_up_to_date_index_and_rebuilds_after_a_library_upgrade(tiny_index, monkeypatch,
                                                                                         capsys, upgrade):
    """`make run` asks the CLI (--if-needed) when only the app environment was reinstalled: an index built
    with the same documents, model and libraries is kept (with its query tuning); a new version of a
    library that shapes the index (here bm25s) rebuilds it."""
    import index.__main__ as cli
    import index.embed
    import index.store

    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tiny_index.index_dir))
    monkeypatch.setenv("ASSISTANT_KNOWLEDGE_DIR", str(tiny_index.knowledge_dir))
    monkeypatch.setenv("ASSISTANT_MODEL", tiny_index.model)

    class Rebuilt(Exception):
        pass

    def build_index(*args, **kwargs):
        raise Rebuilt

    monkeypatch.setattr(index.embed, "prepare_model", lambda settings: None)
    monkeypatch.setattr(index.embed, "SentenceTransformerEmbedder", lambda settings: None)
    monkeypatch.setattr(index.store, "build_index", build_index)
    versions = index.store.library_versions()
    if upgrade:
        monkeypatch.setattr(index.store, "library_versions", lambda: {**versions, "bm25s": "99.0"})
    cli.get_settings.cache_clear()
    try:
        if upgrade:
            with pytest.raises(Rebuilt):
                cli.main(["build", "--if-needed", "--defer-tuning", "--quiet"])
        else:
            assert cli.main(["build", "--if-needed", "--defer-tuning", "--quiet"]) == 0
    finally:
        cli.get_settings.cache_clear()
    out = capsys.readouterr()
    if upgrade:
        assert f"bm25s {versions['bm25s']} -> 99.0" in out.err
    else:
        assert "index up to date" in out.out
