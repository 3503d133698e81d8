"""Score the running assistant on marked questions through Rasa's REST channel (``make eval-answers``).

    python -m assistant.evaluate http://127.0.0.1:5005/webhooks/rest/webhook tests/data/answers_persona.jsonl

Each question goes to a fresh conversation. Prints one JSON line of figures and the 3×3 table of
the marking (answered / partly / not) against the verdict the reply carries (``custom.coverage``):

- citation hit@1 / hit@3 over questions with gold spans (answered and partly), and per language;
- how many of those were declined (coverage none) or met with a form prompt or hand-over instead
  of an answer (a reply with no answer payload);
- for questions the documents do not answer: the share given a full verdict;
- how often the first quoted sentence holds a gold span, and the answer text (as score.py counts it);
- latency p50 / p95.

Gold matching is score.py's: a passage holds a gold span when it has at least half of the span's
12-character shingles after lower-casing and keeping letters and digits only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

_KEEP = re.compile(r"[^0-9a-zåäöéüæø]")
MARKING = {"answered": "full", "partly": "partial", "not": "none"}
ORDER = ("full", "partial", "none")


def norm(text: str) -> str:
    return _KEEP.sub("", text.lower())


def holds(gold: str, passage: str, k: int = 12, limit: int = 1500) -> bool:
    g, p = norm(gold), norm(passage[:limit])
    if not g:
        return False
    if len(g) <= k:
        return g in p
    shingles = {g[i:i + k] for i in range(len(g) - k + 1)}
    return sum(1 for s in shingles if s in p) / len(shingles) >= 0.5


def quote_holds(gold: str, quote: str) -> bool:
    """The quote holds the gold, or is itself (most of) a gold span: a gold span may be longer than a sentence."""
    return holds(gold, quote) or (len(norm(quote)) >= 12 and holds(quote, gold, limit=10_000))


def truth_of(row: dict) -> str:
    """The marking as a verdict: ``marking`` (answered/partly/not), ``coverage``, or ``covered`` (true/false)."""
    if "marking" in row:
        return MARKING[row["marking"]]
    if "coverage" in row:
        return row["coverage"]
    return "full" if row.get("covered", True) else "none"


def ask(client, url: str, question: str) -> tuple[list[dict], float]:
    start = time.perf_counter()
    replies = client.post(url, json={"sender": "eval-" + uuid.uuid4().hex[:12], "message": question}, timeout=120).json()
    return replies, (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> int:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("questions", type=Path)
    ap.add_argument("--misses", type=Path, help="write answerable questions missed at hit@3 here")
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    table = {m: {v: 0 for v in (*ORDER, "no answer")} for m in ORDER}
    answerable = hit1 = hit3 = first_quote = text_holds = declined = hijacked = 0
    by_lang: dict[str, list[int]] = {}
    not_answered = not_full = 0
    latencies, misses = [], []
    # The REST channel needs ASSISTANT_REST_TOKEN when one is configured (from this machine it is optional).
    rest_token = os.environ.get("ASSISTANT_REST_TOKEN")
    with httpx.Client(headers={"Authorization": f"Bearer {rest_token}"} if rest_token else None) as client:
        for row in rows:
            replies, ms = ask(client, args.url, row["question"])
            latencies.append(ms)
            customs = [m["custom"] for m in replies if isinstance(m.get("custom"), dict) and "answered" in m["custom"]]
            # A reply without a verdict (an assistant before verdicts existed) counts answered as full.
            verdict = (customs[0].get("coverage") or ("full" if customs[0]["answered"] else "none")) if customs \
                else "no answer"
            truth = truth_of(row)
            table[truth][verdict] += 1
            citations = [c for custom in customs for c in custom.get("citations", [])]
            gold = row.get("gold") or []
            if truth != "none" and not gold:  # covered but without gold spans: only the verdict counts
                continue
            text = "\n".join(m.get("text") or "" for m in replies)
            if truth == "none":
                not_answered += 1
                not_full += verdict == "full"
                continue
            answerable += 1
            rank = next((i for i, c in enumerate(citations, 1) if any(holds(g, c["text"]) for g in gold)), None)
            hit1 += rank == 1
            hit3 += bool(rank and rank <= 3)
            lang = by_lang.setdefault(row.get("lang", "?"), [0, 0])
            lang[0] += 1
            lang[1] += bool(rank and rank <= 3)
            declined += verdict == "none"
            hijacked += verdict == "no answer"
            quotes = sorted(citations, key=lambda c: c.get("number", 0))
            lead = next((c["quote"] for c in quotes if c.get("quote")), "")
            first_quote += bool(lead) and any(quote_holds(g, lead) for g in gold)
            text_holds += any(holds(g, text, limit=100_000) for g in gold)
            if not rank or rank > 3:
                misses.append({"id": row.get("id"), "question": row["question"], "verdict": verdict, "rank": rank,
                               "got": [c["text"][:200] for c in citations[:3]]})
    n = len(rows)
    out = {
        "n": n, "answerable": answerable, "not_answered": not_answered,
        "hit@1": round(hit1 / max(1, answerable), 3), "hit@3": round(hit3 / max(1, answerable), 3),
        **{f"hit@3_{k}": round(v[1] / v[0], 3) for k, v in sorted(by_lang.items())},
        "answerable_declined": declined, "answerable_form_or_handover": hijacked,
        "answerable_full_or_partial": round(sum(table[t][v] for t in ("full", "partial") for v in ("full", "partial"))
                                            / max(1, answerable), 3),
        "not_answered_full": round(not_full / max(1, not_answered), 3),
        "first_quote_holds_gold": round(first_quote / max(1, answerable), 3),
        "answer_text_holds_gold": round(text_holds / max(1, answerable), 3),
        "form_or_handover_all": sum(table[t]["no answer"] for t in ORDER),
        "latency_ms_p50": round(statistics.median(latencies), 1),
        "latency_ms_p95": round(sorted(latencies)[max(0, int(0.95 * n) - 1)], 1),
    }
    print(json.dumps(out))
    print("marking \\ verdict   full  partial  none  no-answer")
    for t in ORDER:
        r = table[t]
        print(f"{t:18s} {r['full']:5d} {r['partial']:8d} {r['none']:5d} {r['no answer']:10d}")
    if args.misses:
        args.misses.write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in misses), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
