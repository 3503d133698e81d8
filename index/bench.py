"""Benchmarks: index build time, search latency over the dev questions, and a 100k-paragraph scale
run comparing exact and approximate FAISS indexes. Prints figures; asserts nothing.

    python -m index.bench --questions ../shared/eval/dev.jsonl [--scale 100000] [--skip-build]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered))) - 1))]


def bench_build(settings) -> dict:
    from .embed import SentenceTransformerEmbedder, prepare_model
    from .store import build_index

    prepare_model(settings)
    embedder = SentenceTransformerEmbedder(settings)
    _ = embedder.dimension  # load the model outside the timing: the build target is "after the model is prepared"
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = build_index(settings.knowledge_dir, Path(tmp) / "index", embedder)
        seconds = time.perf_counter() - start
    return {"build_seconds": round(seconds, 1), "paragraphs": report.paragraphs, "vectors": report.vectors}


def bench_search(settings, questions: list[str], rounds: int) -> dict:
    from .search import SearchEngine

    engine = SearchEngine.load(settings)
    engine.search("uppvärmning", 5)  # first call loads lazy parts
    latencies: list[float] = []
    for _ in range(rounds):
        for q in questions:
            start = time.perf_counter()
            engine.search(q, 10)
            latencies.append((time.perf_counter() - start) * 1000)
    return {
        "search_queries": len(latencies),
        "search_ms_p50": round(statistics.median(latencies), 1),
        "search_ms_p95": round(percentile(latencies, 95), 1),
        "search_ms_max": round(max(latencies), 1),
    }


def bench_scale(n: int, dim: int, queries: int, k: int = 10, seed: int = 7) -> list[dict]:
    """Exact (flat) vs approximate (HNSW, IVF) inner-product search on n synthetic unit vectors."""
    import faiss

    rng = np.random.default_rng(seed)
    # Real text embeddings have a low intrinsic dimension: draw points around topic centres in a
    # 48-d latent space, project them to ``dim`` and add a little noise. Queries are perturbed
    # paragraphs, as a question is a paraphrase of the text that answers it.
    latent = 48
    centres = rng.standard_normal((512, latent)).astype(np.float32)
    points = centres[rng.integers(0, 512, n)] + 0.5 * rng.standard_normal((n, latent)).astype(np.float32)
    projection = rng.standard_normal((latent, dim)).astype(np.float32) / np.sqrt(latent)
    data = points @ projection + 0.05 * rng.standard_normal((n, dim)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    q = data[rng.integers(0, n, queries)] + 0.02 * rng.standard_normal((queries, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q = q.astype(np.float32)

    def measure(name: str, make, tune=None) -> dict:
        start = time.perf_counter()
        index = make()
        if not index.is_trained:
            index.train(data)
        index.add(data)
        build = time.perf_counter() - start
        if tune:
            tune(index)
        size = len(faiss.serialize_index(index))
        lat = []
        found = []
        for row in q:
            t = time.perf_counter()
            _, ids = index.search(row[None, :], k)
            lat.append((time.perf_counter() - t) * 1000)
            found.append(ids[0])
        return {"index": name, "build_s": round(build, 2), "memory_mb": round(size / 2**20, 1),
                "p50_ms": round(statistics.median(lat), 3), "p95_ms": round(percentile(lat, 95), 3), "ids": found}

    results = [measure("flat (exact)", lambda: faiss.IndexFlatIP(dim))]
    exact = results[0]["ids"]

    for ef in (64, 256):
        results.append(
            measure(
                f"hnsw32 ef{ef}", lambda: faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT),
                lambda index, ef=ef: setattr(index.hnsw, "efSearch", ef),
            )
        )
    nlist = int(4 * np.sqrt(n))

    def set_probe(index):
        index.nprobe = 16

    results.append(
        measure(f"ivf{nlist} nprobe16", lambda: faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT), set_probe)
    )
    for r in results:
        r[f"recall@{k}"] = round(float(np.mean([len(set(a) & set(b)) / k for a, b in zip(r.pop("ids"), exact)])), 4)
    return results


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    from .settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m index.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, help="JSON Lines with a 'question' field (the dev set)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions for latency")
    parser.add_argument("--scale", type=int, default=100_000, help="synthetic paragraphs for the scale run (0 = skip)")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = get_settings()
    console = Console()
    out: dict = {}
    if not args.skip_build:
        out.update(bench_build(settings))
        console.print(f"index build (model prepared): {out['build_seconds']} s for {out['paragraphs']} paragraphs / {out['vectors']} vectors")
    if args.questions:
        questions = [json.loads(line)["question"] for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
        out.update(bench_search(settings, questions, args.rounds))
        console.print(
            f"search latency over {out['search_queries']} queries (k=10): p50 {out['search_ms_p50']} ms, "
            f"p95 {out['search_ms_p95']} ms, max {out['search_ms_max']} ms"
        )
    if args.scale:
        rows = bench_scale(args.scale, 384, queries=200)
        out["scale"] = {"paragraphs": args.scale, "dimension": 384, "results": rows}
        table = Table(title=f"FAISS on {args.scale:,} synthetic 384-d paragraphs (200 queries, k=10)")
        for col in ("index", "build_s", "memory_mb", "p50_ms", "p95_ms", "recall@10"):
            table.add_column(col)
        for r in rows:
            table.add_row(*(str(r[c]) for c in ("index", "build_s", "memory_mb", "p50_ms", "p95_ms", "recall@10")))
        console.print(table)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
