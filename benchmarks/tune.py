"""Choose the retrieval settings by measurement: grid-search fusion and refusal settings on half
of the evaluation questions (even positions) and report them on the other half, so the figures in
docs/benchmarks.md are not just a fit to the questions they were tuned on.

    .venv/bin/python -m benchmarks.tune
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.evaluation import Question, load_questions
from bot.retrieval.embedder import Vectors
from bot.retrieval.search import SearchConfig, Searcher
from bot.services.search import SearchService
from bot.settings import load_settings

QUESTIONS = Path("benchmarks/data/questions.yaml")


@dataclass(frozen=True)
class Score:
    hit1: float
    hit3: float
    refused: float  # unanswerable refused (higher is better)
    wrongly: float  # answerable refused (lower is better)

    @property
    def objective(self) -> float:
        """Ranking first, then refusal: both goals of the issue, equally weighted."""
        return self.hit1 + self.hit3 + self.refused - 2 * self.wrongly


def score(
    searcher: Searcher,
    questions: Sequence[Question],
    vectors: Sequence[Vectors],
    config: SearchConfig,
) -> Score:
    h1 = h3 = refused = wrongly = 0
    answerable = [q for q in questions if q.answerable]
    for question, vector in zip(questions, vectors, strict=True):
        result = searcher.search(question.q, vector, top_k=10, config=config)
        documents: list[str] = []
        for hit in result.hits:
            if hit.chunk.document not in documents:
                documents.append(hit.chunk.document)
        if question.answerable:
            h1 += documents[:1] == [question.document]
            h3 += question.document in documents[:3]
            wrongly += not result.answered
        else:
            refused += not result.answered
    n, u = len(answerable), len(questions) - len(answerable)
    return Score(h1 / n, h3 / n, refused / u if u else 1.0, wrongly / n)


def main() -> int:
    settings = load_settings()
    service = SearchService(settings)
    service.load()
    questions = load_questions(QUESTIONS)
    vectors = list(service.embedder.encode_queries([q.q for q in questions]))
    tune = [i for i in range(len(questions)) if i % 2 == 0]
    held = [i for i in range(len(questions)) if i % 2 == 1]
    searcher = service.searcher

    def subset(indices: list[int]) -> tuple[list[Question], list[Vectors]]:
        return [questions[i] for i in indices], [vectors[i] for i in indices]

    grid = {
        "lexical_weight": [0.6, 0.7, 0.75, 0.8, 0.9],
        "document_evidence": [0.0, 0.1, 0.2, 0.3],
        "min_coverage": [0.4, 0.5, 0.6, 0.7],
        "strong_dense": [0.55, 0.62, 0.7, 1.1],
        "max_unknown_share": [0.34, 0.5, 0.67],
    }
    keys = list(grid)
    results: list[tuple[float, dict[str, float], Score]] = []
    for values in itertools.product(*grid.values()):
        changes = dict(zip(keys, values, strict=True))
        config = SearchConfig().with_changes(dense_weight=1 - changes["lexical_weight"], **changes)
        result = score(searcher, *subset(tune), config)
        results.append((result.objective, changes, result))
    results.sort(key=lambda item: -item[0])
    print("best settings on the tuning half, and the same settings on the held-out half:")
    for objective, changes, tuned in results[:8]:
        config = SearchConfig().with_changes(dense_weight=1 - changes["lexical_weight"], **changes)
        held_score = score(searcher, *subset(held), config)
        print(
            f"{changes}\n  tune: {tuned} obj={objective:.3f}\n  held: {held_score} "
            f"obj={held_score.objective:.3f}"
        )
    default = score(searcher, questions, vectors, SearchConfig())
    print(f"current defaults on all questions: {default}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
