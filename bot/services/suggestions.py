"""Next questions to offer a young person as buttons, built from the catalog only.

A suggestion is a question the bot can answer from its own knowledge: it names a project of
`catalogs/projects.yaml` and asks for a fact that project's entry holds (its contact, its
website) or what the project is. Nothing is suggested that the knowledge base does not hold,
so a button never leads to "I don't know" or to a promise the sources do not make
(tests/test_suggestions.py asks every possible suggestion).
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.i18n import translate
from bot.knowledge.models import KnowledgeBase, Project
from bot.services.answers import value_kinds

MAX_SUGGESTIONS = 3
#: Catalog themes about young people taking part themselves: offered to young people first.
YOUNG_THEMES = frozenset(
    {"youth-participation", "co-responsibility", "guidance", "ngos", "job-centres", "employers"}
)


def _browsable(kb: KnowledgeBase) -> list[Project]:
    """Projects with a name of their own (working groups are named by a description)."""
    return [p for p in kb.projects.values() if p.kind != "working-group"]


def facts(project: Project) -> list[str]:
    """The suggestion kinds a project's catalog entry can answer, most useful first."""
    found = []
    if project.contact is not None and (project.contact.name or project.contact.organisation):
        found.append("contact")
    if project.website:
        found.append("website")
    return found


def all_suggestions(kb: KnowledgeBase, lang: str) -> list[tuple[str, str, str]]:
    """Every suggestion there can be: (project id, kind, question). For tests and review."""
    out = []
    for project in _browsable(kb):
        for kind in ("what", *facts(project)):
            out.append(
                (project.id, kind, translate(lang, f"questions.suggest_{kind}", name=project.name))
            )
    return out


def suggest(kb: KnowledgeBase, lang: str, question: str, projects: Iterable[str] = ()) -> list[str]:
    """Two or three next questions: facts of the project just talked about that were not
    just asked, then what the other projects are (those where young people take part
    themselves first)."""
    asked = question.casefold().strip()
    kinds = value_kinds(question)
    found: list[str] = []
    current = [kb.projects[p] for p in projects if p in kb.projects]
    for project in current[:1]:
        for kind in facts(project):
            if (kind == "contact" and "person" in kinds) or (kind == "website" and "web" in kinds):
                continue
            found.append(translate(lang, f"questions.suggest_{kind}", name=project.name))
    current_ids = {p.id for p in current[:1]}
    others = sorted(
        (p for p in _browsable(kb) if p.id not in current_ids),
        key=lambda p: (-len(YOUNG_THEMES & set(p.themes)), p.name.casefold()),
    )
    for project in others:
        found.append(translate(lang, "questions.suggest_what", name=project.name))
    unique = [s for s in dict.fromkeys(found) if s.casefold().strip() != asked]
    return unique[:MAX_SUGGESTIONS]
