"""Run in a fresh process by the scale benchmark: load an index and the model the way the running
bot does (load_index + Searcher + knowledge + Embedder), then time retrieval with precomputed
vectors and report resident memory. Prints one JSON object.

    python -m benchmarks.probe --index-dir DIR [--questions N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bot.knowledge import load_knowledge
from bot.retrieval.embedder import load_embedder
from bot.retrieval.search import Searcher
from bot.retrieval.store import load_index

from .common import KNOWLEDGE, load_bench_questions, peak_rss_bytes, rss_bytes


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--questions", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from bot.settings import BUNDLED_MODEL

    model = args.model or BUNDLED_MODEL
    report: dict[str, object] = {"rss_start": rss_bytes()}
    started = time.perf_counter()
    index = load_index(args.index_dir, model, load_embedder(model).backend)
    report["load_index_s"] = time.perf_counter() - started
    started = time.perf_counter()
    searcher = Searcher(index)
    report["searcher_s"] = time.perf_counter() - started
    report["vocabulary"] = len(searcher.vocabulary.words)
    started = time.perf_counter()
    load_knowledge(KNOWLEDGE)
    report["knowledge_s"] = time.perf_counter() - started
    report["rss_index"] = rss_bytes()
    report["dense_index"] = index.meta.dense_index
    report["chunks"] = index.meta.chunks

    started = time.perf_counter()
    embedder = load_embedder(model)
    embedder.encode_queries(["warm-up"])
    report["model_s"] = time.perf_counter() - started
    report["rss_model"] = rss_bytes()

    questions = load_bench_questions(args.questions)
    vectors = embedder.encode_queries([q.q for q in questions])
    analyser = searcher.analyser(searcher.config)
    try:  # the same search without the two per-query passes over every chunk
        plain = searcher.config.with_changes(document_evidence=0.0, diversify="")
    except TypeError:
        plain = None
    plain_s: list[float] = []
    searches: dict[str, list[float]] = {q.id: [] for q in questions}
    dense: list[float] = []
    lexical: list[float] = []
    analyse: list[float] = []
    for round_ in range(args.rounds):
        order = list(zip(questions, vectors, strict=True))
        if round_ % 2:
            order.reverse()
        for question, vector in order:
            analyser.analyse.cache_clear()
            started = time.perf_counter()
            searcher.search(question.q, vector)
            searches[question.id].append(time.perf_counter() - started)
            analyser.analyse.cache_clear()
            started = time.perf_counter()
            analysed = analyser.analyse(question.q)
            analyse.append(time.perf_counter() - started)
            started = time.perf_counter()
            searcher.lexical_scores(analysed.words)
            lexical.append(time.perf_counter() - started)
            started = time.perf_counter()
            searcher.dense_scores(vector)
            dense.append(time.perf_counter() - started)
            if plain is not None:
                searcher.analyser(plain).analyse.cache_clear()
                started = time.perf_counter()
                searcher.search(question.q, vector, config=plain)
                plain_s.append(time.perf_counter() - started)
    report["search_s"] = [sorted(v)[len(v) // 2] for v in searches.values()]
    report["analyse_s"] = analyse
    report["lexical_s"] = lexical
    report["dense_s"] = dense
    report["plain_s"] = plain_s
    report["rss_end"] = rss_bytes()
    report["rss_peak"] = peak_rss_bytes()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
