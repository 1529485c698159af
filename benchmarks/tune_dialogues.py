"""Choose the conversation rules (`bot.services.conversation.Rules`) on the TUNING split of
benchmarks/data/dialogues.yaml. The report split is never loaded here: its figures in
docs/benchmarks.md come from `make eval` and are not a fit to the dialogues the rules were
chosen on (tests/test_evaluation_dialogues.py fails if this module plays a report dialogue).

    .venv/bin/python -m benchmarks.tune_dialogues
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot.evaluation_dialogues import (
    Dialogue,
    DialogueFigures,
    DialogueOutcome,
    dialogue_figures,
    load_dialogues,
    play,
)
from bot.services.conversation import Rules

DIALOGUES = Path("benchmarks/data/dialogues.yaml")
Player = Callable[[Any, Sequence[Dialogue], Rules], list[DialogueOutcome]]


class ReportSplitError(AssertionError):
    """Tuning was handed a report dialogue: the report figures would no longer be honest."""


def tuning_dialogues(path: Path = DIALOGUES) -> list[Dialogue]:
    """The tuning split only; report dialogues are skipped while parsing, never built."""
    return load_dialogues(path, splits=("tuning",))


def candidates() -> list[Rules]:
    return [
        Rules(elsewhere_share=share, unknown_is_new=unknown)
        for share, unknown in itertools.product((0.0, 0.34, 0.5, 0.67, 0.99), (True, False))
    ]


def objective(figures: DialogueFigures) -> float:
    """Both goals of the issue, equally weighted."""
    return (figures.follow_up_hit3 or 0.0) + (figures.new_topic_kept or 0.0)


def tune(
    service: Any, dialogues: Sequence[Dialogue], player: Player = play
) -> list[tuple[Rules, DialogueFigures]]:
    """Every candidate's figures on `dialogues`, best first."""
    report = [d.id for d in dialogues if d.split != "tuning"]
    if report:
        raise ReportSplitError(f"tuning must not see report dialogues: {', '.join(report)}")
    scored = [
        (rules, dialogue_figures(player(service, dialogues, rules))) for rules in candidates()
    ]
    return sorted(scored, key=lambda pair: -objective(pair[1]))


def run(service: Any, path: Path = DIALOGUES, player: Player = play) -> list[str]:
    lines = ["elsewhere_share  unknown_is_new  follow-up H@3  new-topic kept  unanswerable refused"]
    for rules, figures in tune(service, tuning_dialogues(path), player):
        lines.append(
            f"{rules.elsewhere_share:15.2f}  {rules.unknown_is_new!s:14}  "
            f"{figures.follow_up_hit3 or 0:13.2f}  {figures.new_topic_kept or 0:14.2f}  "
            f"{figures.unanswerable_refused or 0:20.2f}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    from bot.services.search import SearchService
    from bot.settings import load_settings

    service = SearchService(load_settings())
    service.load()
    print("\n".join(run(service)))
    print(f"(defaults: {Rules()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
