"""What each retrieval lever buys: switch one off at a time and measure the same figures.

.venv/bin/python -m benchmarks.levers        (prints a Markdown table)
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.tune import QUESTIONS, Score, score
from bot.evaluation import load_questions
from bot.retrieval.search import SearchConfig
from bot.services.search import SearchService
from bot.settings import load_settings

ALL_KINDS = SearchConfig().kinds
LEVERS: list[tuple[str, SearchConfig]] = [
    ("all levers (the product)", SearchConfig()),
    ("− typo repair", SearchConfig(fuzzy=False)),
    ("− split-name joining", SearchConfig(join=False)),
    ("− compound splitting", SearchConfig(decompound=False)),
    ("− curated summaries", SearchConfig(kinds=ALL_KINDS - {"summary"})),
    ("− catalog cards", SearchConfig(kinds=frozenset({"document", "summary"}))),
    ("− document evidence", SearchConfig(document_evidence=0.0)),
    ("− diverse third result", SearchConfig(diversify="")),
    (
        "− dense leg (lexical only)",
        SearchConfig(lexical_weight=1.0, dense_weight=0.0, diversify=""),
    ),
    ("− lexical leg (dense only)", SearchConfig(lexical_weight=0.0, dense_weight=1.0)),
    ("− answer-type check", SearchConfig(answer_types=False)),
    ("− unknown-word rule", SearchConfig(max_unknown_share=1.01)),
    ("+ names counted twice in BM25 (tried, off)", SearchConfig(name_boost=2)),
    (
        "+ unknown words count against coverage ×0.25 (tried, off)",
        SearchConfig(unknown_weight=0.25),
    ),
]


def main() -> int:
    service = SearchService(load_settings())
    service.load()
    questions = load_questions(Path(QUESTIONS))
    vectors = list(service.embedder.encode_queries([q.q for q in questions]))
    groups = {
        "all": list(range(len(questions))),
        "cross": [
            i for i, q in enumerate(questions) if "cross-lingual" in q.tags or not q.answerable
        ],
        "para": [i for i, q in enumerate(questions) if "paraphrase" in q.tags or not q.answerable],
    }
    print(
        "| lever | doc H@1 | doc H@3 | cross-lingual H@3 | paraphrase H@3 | unanswerable "
        "refused | answerable wrongly refused |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, config in LEVERS:
        results: dict[str, Score] = {
            key: score(
                service.searcher, [questions[i] for i in idx], [vectors[i] for i in idx], config
            )
            for key, idx in groups.items()
        }
        a = results["all"]
        print(
            f"| {name} | {a.hit1:.2f} | {a.hit3:.2f} | {results['cross'].hit3:.2f} | "
            f"{results['para'].hit3:.2f} | {a.refused:.2f} | {a.wrongly:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
