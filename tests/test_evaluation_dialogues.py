"""The dialogue set and its loader, the report/tuning separation, and the reply figures.
Fast: no embedding model (tuning runs against a recording stand-in)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks import tune_dialogues
from bot.evaluation_dialogues import (
    Dialogue,
    DialogueFileError,
    DialogueOutcome,
    dialogue_figures,
    load_dialogues,
    parse_dialogues,
    replace_section,
    visible_text,
)
from bot.knowledge import load_knowledge
from bot.services.conversation import Plan, Rules

REPO = Path(__file__).resolve().parents[1]
DIALOGUES = REPO / "benchmarks" / "data" / "dialogues.yaml"
DOCUMENTS = list(load_knowledge(REPO / "knowledge").documents)


def _entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "x1",
        "split": "report",
        "lang": "en",
        "kind": "follow-up",
        "first": "What is NEO?",
        "second": "and its budget?",
        "first_document": "neo",
        "document": "neo",
        "phrases": ["868 744"],
    }
    entry.update(overrides)
    return entry


# --- the set itself --------------------------------------------------------------------------


def test_the_dialogue_set_is_large_enough_and_balanced() -> None:
    dialogues = load_dialogues(DIALOGUES, documents=DOCUMENTS)
    assert len(dialogues) >= 60
    for split in ("report", "tuning"):
        part = [d for d in dialogues if d.split == split]
        assert len(part) >= 30, split
        languages = Counter(d.lang for d in part)
        assert set(languages) == {"en", "sv", "da"}, split
        assert min(languages.values()) >= 10, (split, languages)
        kinds = Counter(d.kind for d in part)
        assert kinds["follow-up"] >= 20, (split, kinds)
        assert kinds["new-topic"] >= 10, (split, kinds)
        # every document is talked about in every split
        assert {d.first_document for d in part} == set(DOCUMENTS), split


def test_second_turns_of_follow_ups_name_nothing_the_first_did_not() -> None:
    """A follow-up in the set is one a person types: short, no project name of its own."""
    names = ("atwork4neets", "bags4youth", "neo ", "integrate neets", "temagruppen")
    for dialogue in load_dialogues(DIALOGUES):
        if dialogue.kind == "follow-up":
            second = dialogue.second.casefold() + " "
            assert not any(name in second for name in names), dialogue.id


def test_the_report_half_was_committed_before_the_tuning_half() -> None:
    """The file lists the report half first: it was written (and committed) first."""
    data = yaml.safe_load(DIALOGUES.read_text(encoding="utf-8"))
    splits = [entry["split"] for entry in data["dialogues"]]
    first_tuning = splits.index("tuning")
    assert set(splits[:first_tuning]) == {"report"}
    assert set(splits[first_tuning:]) == {"tuning"}


# --- the loader -------------------------------------------------------------------------------


def test_loader_keeps_only_the_asked_splits() -> None:
    data = {"dialogues": [_entry(), _entry(id="t1", split="tuning")]}
    assert [d.id for d in parse_dialogues(data, splits=("tuning",))] == ["t1"]
    assert [d.id for d in parse_dialogues(data)] == ["x1", "t1"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_entry(split="both"), "'split' must be one of"),
        (_entry(lang="de"), "'lang' must be one of"),
        (_entry(kind="chat"), "'kind' must be one of"),
        (_entry(second=""), "'second' is missing"),
        (_entry(document="nowhere"), "unknown document"),
        (_entry(kind="new-topic"), "another document"),
        (_entry(document=None), "no phrases"),
        (_entry(extra=1), "unknown key"),
    ],
)
def test_loader_names_the_dialogue_and_the_problem(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(DialogueFileError, match=message) as error:
        parse_dialogues({"dialogues": [entry]}, "file.yaml", documents=DOCUMENTS)
    assert "file.yaml" in str(error.value)


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(DialogueFileError, match="duplicate id"):
        parse_dialogues({"dialogues": [_entry(), _entry()]})


# --- tuning never sees the report half ---------------------------------------------------------


def _outcome(dialogue: Dialogue) -> DialogueOutcome:
    plan = Plan(dialogue.second, dialogue.second, dialogue.kind == "follow-up", None, "")
    expected = [dialogue.document] if dialogue.document else []
    return DialogueOutcome(dialogue, plan, [dialogue.first_document], expected, True, [], True)


def test_tuning_plays_only_tuning_dialogues() -> None:
    played: list[Dialogue] = []

    def recording(service: Any, dialogues: Sequence[Dialogue], rules: Rules) -> list[Any]:
        played.extend(dialogues)
        return [_outcome(d) for d in dialogues]

    lines = tune_dialogues.run(None, DIALOGUES, recording)
    assert played, "the tuning run played nothing"
    report = sorted({d.id for d in played if d.split != "tuning"})
    assert report == [], f"tuning read report dialogues: {report}"
    assert len(lines) == 1 + len(tune_dialogues.candidates())


def test_tuning_refuses_report_dialogues_handed_to_it() -> None:
    report = [d for d in load_dialogues(DIALOGUES, splits=("report",))][:2]
    with pytest.raises(tune_dialogues.ReportSplitError):
        tune_dialogues.tune(None, report, lambda *_: [])


def test_the_default_rules_are_among_the_tuned_candidates() -> None:
    assert Rules() in tune_dialogues.candidates()


# --- figures ---------------------------------------------------------------------------------


def test_figures_count_follow_ups_new_topics_and_refusals() -> None:
    follow = Dialogue("a", "report", "en", "follow-up", "q1", "q2", "neo", "neo")
    new = Dialogue("b", "report", "en", "new-topic", "q1", "q2", "neo", "bags4youth")
    unanswerable = Dialogue("c", "report", "en", "new-topic", "q1", "q2", "neo", None)
    plan = Plan("q2", "q2", False, None, "")
    outcomes = [
        DialogueOutcome(follow, plan, ["neo"], ["bags4youth", "hostens", "neo"], True, [], True),
        DialogueOutcome(new, plan, ["neo"], ["neo", "bags4youth"], True, ["bags4youth"], True),
        DialogueOutcome(unanswerable, plan, ["neo"], ["neo"], False, [], False),
    ]
    figures = dialogue_figures(outcomes)
    assert figures.follow_ups == 1
    assert figures.follow_up_hit3 == 1.0
    assert figures.follow_up_hit3_alone == 0.0
    assert figures.new_topics == 2
    assert figures.new_topic_kept == 0.5  # dragged back to neo once; the refusal is kept
    assert figures.new_topic_hit3 == 1.0
    assert figures.unanswerable_refused == 1.0


def test_visible_text_drops_markup_and_decodes_entities() -> None:
    assert visible_text("<b>A &amp; B</b>\n<i>c</i>") == "A & B\nc"


def test_replace_section_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text("# Title\n\nbefore\n", encoding="utf-8")
    replace_section(path, "## One\n")
    replace_section(path, "## Two\n")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nbefore\n")
    assert "## Two" in text
    assert "## One" not in text
    assert text.count("<!-- conversation:start -->") == 1
