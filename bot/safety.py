"""Crisis screening of user messages, and the helplines shown with the answer.

Every message is screened before retrieval, because a young person in crisis must meet care and a
helpline first, not a list of projects. The screen is a small set of readable rules rather than a
model: it runs offline, in microseconds, and a reviewer can see why any message was flagged.

The phrases live in data files, one per language (`bot/data/crisis/<lang>.yaml`, explained in
`bot/data/crisis/README.md`), so adding a phrase or a language is a change a youth-work
professional can review; this module is the engine that reads them. Three kinds of evidence are
combined:

* phrases written about oneself ("jag vill dö", "min pappa slår mig", "cutting myself"),
  expanded from templates so that the third-person form of the same phrase
  ("unga som vill ta livet av sig") is recognised as a topic instead of a crisis;
* phrases that imply the writer without naming them ("vill bara försvinna", "kan ikke mere");
* the themes themselves ("självmord", "selvskade", "domestic violence"), which are a crisis only
  when the message is personal and not a practitioner's question.

When unsure between a crisis and a topic, a personal message errs towards crisis; a message with
professional framing and no personal marker never becomes one. Every language's phrases are tried
on every message, since people mix languages.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.errors import BrobyggerError

__all__ = [
    "CRISIS_DIR",
    "HELPLINES",
    "Concern",
    "CrisisRules",
    "CrisisRulesError",
    "Helpline",
    "Level",
    "SafetyAssessment",
    "assess",
    "default_rules",
    "helplines_for",
    "load_rules",
]

CRISIS_DIR = Path(__file__).parent / "data" / "crisis"


class Concern(Enum):
    SUICIDE = "suicide"
    SELF_HARM = "self_harm"
    VIOLENCE_AT_HOME = "violence_at_home"


class Level(Enum):
    NONE = "none"
    TOPIC = "topic"
    CRISIS = "crisis"


@dataclass(frozen=True)
class SafetyAssessment:
    level: Level
    concerns: frozenset[Concern]


class CrisisRulesError(BrobyggerError):
    """A crisis phrase file that cannot be used; the message names the file and the entry."""


_SAFE = SafetyAssessment(Level.NONE, frozenset())


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_APOSTROPHES = frozenset("'’ʼ`´")  # dropped, so "don't" and "dont" read the same
_QUOTES = frozenset('"“”„«»')  # kept as '"' until quoted speech has been looked at
# Kept, because "kan ikke mere." is a cry and "kan ikke mere søge" is a rule change.
_CLAUSE_PUNCTUATION = frozenset(".,!?;:")
_INVISIBLE = frozenset({"Cc", "Cf", "Mn", "Me"})  # zero-width, joiners, variation selectors
_LETTER_FOLDS = str.maketrans({"æ": "a", "ø": "o", "œ": "o"})
_DIGRAPHS = (("aa", "a"), ("ae", "a"), ("oe", "o"))  # how å, æ and ø are typed without them
_QUOTED = re.compile(r'"[^"]*"')


def _clean(text: str) -> str:
    """Reduce a message to lowercase words and clause punctuation.

    Zero-width characters are dropped rather than turned into spaces because they are used to
    split a word invisibly ("själ\u200bvmord"); emoji and other symbols become spaces because they
    stand between words.
    """
    chars: list[str] = []
    for ch in unicodedata.normalize("NFKC", text).casefold():
        if ch.isspace():
            chars.append(" ")
        elif ch in _APOSTROPHES:
            continue
        elif ch in _QUOTES:
            chars.append('"')
        elif unicodedata.category(ch) in _INVISIBLE:
            continue
        elif ch.isalnum() or ch in _CLAUSE_PUNCTUATION:
            chars.append(ch)
        else:
            chars.append(" ")
    return " ".join("".join(chars).split())


def _fold(text: str) -> str:
    """Strip diacritics so that "sjalvmord", "självmord" and "sjælvmord" read alike."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTER_FOLDS))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _forms(cleaned: str) -> tuple[str, ...]:
    """Return the spellings every rule is tried against.

    The text keeps its diacritics, is folded, and is folded once more with the digraphs people
    type for å/æ/ø ("slaar", "skaerer", "doe"); a rule matching any form counts. Rules are written
    in the folded spelling.
    """
    text = " ".join(cleaned.replace('"', " ").split())
    folded = _fold(text)
    digraphs = folded
    for typed, letter in _DIGRAPHS:
        digraphs = digraphs.replace(typed, letter)
    return tuple(dict.fromkeys((text, folded, digraphs)))


# --------------------------------------------------------------------------------------------
# Rules, read from the data files
# --------------------------------------------------------------------------------------------

Rule = tuple[Concern, re.Pattern[str]]

_SLOT = re.compile(r"<([A-Z_]+)>")
_RULE_SECTIONS = ("about_a_person", "implied", "themes")
_MARKER_SECTIONS = ("personal", "distress", "third_party", "professional")
_GUARD_LISTS = (
    "game_prepositions",
    "games",
    "figurative_prepositions",
    "figurative_causes",
    "figurative_after",
    "clause_words",
)


def _one_of(words: Iterable[str]) -> str:
    return "(?:" + "|".join(words) + ")"


@dataclass(frozen=True)
class _Language:
    """One data file: its word lists as regex fragments, and its rule templates."""

    code: str
    words: dict[str, str]
    writer: dict[str, str]
    someone_else: dict[str, str]
    guards: dict[str, list[str]]
    rules: dict[str, list[tuple[Concern, str]]]
    misspellings: list[tuple[Concern, str]]
    markers: dict[str, list[str]]


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CrisisRulesError(f"{where}: expected a list of words or phrases")
    return list(value)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CrisisRulesError(f"{where}: expected a mapping")
    return {str(k): v for k, v in value.items()}


def _concern(name: str, where: str) -> Concern:
    try:
        return Concern(name)
    except ValueError:
        known = ", ".join(c.value for c in Concern)
        raise CrisisRulesError(f"{where}: unknown concern {name!r} (known: {known})") from None


def _word_list(spec: Any, where: str) -> str:
    """`one_of` (one word), `optional` (at most one, then a space) or `any_number_of`."""
    spec = _mapping(spec, where)
    if len(spec) != 1:
        raise CrisisRulesError(f"{where}: expected one of one_of, optional, any_number_of")
    kind, words = next(iter(spec.items()))
    alternatives = _one_of(_strings(words, f"{where}.{kind}"))
    if kind == "one_of":
        return alternatives
    if kind == "optional":
        return f"(?:{alternatives} )?"
    if kind == "any_number_of":
        return f"(?:{alternatives} )*"
    raise CrisisRulesError(f"{where}: expected one of one_of, optional, any_number_of")


def _read_language(path: Path) -> _Language:
    name = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CrisisRulesError(f"{name}: not valid YAML: {exc}") from None
    data = _mapping(data, name)
    code = str(data.get("language", path.stem))
    words = {
        slot: _word_list(spec, f"{name}: words.{slot}")
        for slot, spec in _mapping(data.get("words", {}), f"{name}: words").items()
    }
    writer: dict[str, str] = {}
    someone_else: dict[str, str] = {}
    person = _mapping(data.get("person", {}), f"{name}: person")
    for slot, spec in person.items():
        where = f"{name}: person.{slot}"
        forms = _mapping(spec, where)
        writer[slot] = _one_of(_strings(forms.get("writer"), f"{where}.writer"))
        someone_else[slot] = _one_of(_strings(forms.get("someone_else"), f"{where}.someone_else"))
    guards = _mapping(data.get("guards", {}), f"{name}: guards")
    guard_lists = {
        key: _strings(guards.get(key, []), f"{name}: guards.{key}") if guards.get(key) else []
        for key in _GUARD_LISTS
    }
    rules: dict[str, list[tuple[Concern, str]]] = {}
    for section in _RULE_SECTIONS:
        by_concern = _mapping(data.get(section, {}), f"{name}: {section}")
        rules[section] = [
            (_concern(concern, f"{name}: {section}"), template)
            for concern, templates in by_concern.items()
            for template in _strings(templates, f"{name}: {section}.{concern}")
        ]
    misspelt = _mapping(data.get("misspelt_themes", {}), f"{name}: misspelt_themes")
    misspellings = [
        (_concern(concern, f"{name}: misspelt_themes"), word)
        for concern, words_ in misspelt.items()
        for word in _strings(words_, f"{name}: misspelt_themes.{concern}")
    ]
    markers = {
        section: _strings(data.get(section, []), f"{name}: {section}") if data.get(section) else []
        for section in _MARKER_SECTIONS
    }
    return _Language(code, words, writer, someone_else, guard_lists, rules, misspellings, markers)


def _pooled(languages: Iterable[_Language], key: str) -> list[str]:
    return list(dict.fromkeys(w for language in languages for w in language.guards[key]))


def _shared_slots(languages: list[_Language]) -> dict[str, str]:
    """Guards every phrase may use, pooled from all languages' lists."""
    game_preps = _one_of(_pooled(languages, "game_prepositions"))
    games = _one_of(_pooled(languages, "games"))
    figurative = _one_of(_pooled(languages, "figurative_prepositions"))
    causes = _one_of(_pooled(languages, "figurative_causes"))
    after = "".join(f"| {w}\\b" for w in _pooled(languages, "figurative_after"))
    joiners = _one_of(_pooled(languages, "clause_words"))
    return {
        # Beaten at a game, not by a person: "slog mig i schack", "beat me at chess".
        "NO_GAME": rf"(?! (?:\w+ )?{game_preps} (?:\w+ )?{games}\b)",
        # Dying as a figure of speech: "die of embarrassment", "dø af grin", "dö av skam".
        "LITERAL": rf"(?! {figurative} {causes}\b{after})",
        # The end of what was said: "kan ikke mere." but not "kan ikke mere søge om støtte".
        "END": rf"(?=\s?[.,!?;:]|\s*$|\s{joiners}\b)",
    }


def _compile(template: str, slots: Mapping[str, str], where: str) -> re.Pattern[str]:
    """Fill a template's slots and anchor it on word edges, so "do" never matches "dock"."""

    def fill(match: re.Match[str]) -> str:
        try:
            return slots[match.group(1)]
        except KeyError:
            raise CrisisRulesError(f"{where}: unknown word list <{match.group(1)}>") from None

    body = _SLOT.sub(fill, template)
    try:
        return re.compile(rf"(?<!\w)(?:{body})(?!\w)")
    except re.error as exc:
        raise CrisisRulesError(f"{where}: {exc}: {template!r}") from None


@dataclass(frozen=True)
class CrisisRules:
    """Everything `assess` needs, compiled from the data files of one folder."""

    languages: tuple[str, ...]
    own: list[Rule]  # about a person, filled with the writer's words
    others: list[Rule]  # the same phrases about someone else (only those that name a person)
    implied: list[Rule]
    themes: list[Rule]
    misspellings: list[tuple[Concern, str]]
    personal: list[re.Pattern[str]]
    distress: list[re.Pattern[str]]
    third_party: list[re.Pattern[str]]
    professional: list[re.Pattern[str]]


def load_rules(directory: Path | None = None) -> CrisisRules:
    """Read and compile every `<lang>.yaml` in `directory` (default: the shipped CRISIS_DIR); a
    broken file raises CrisisRulesError naming it, so a bad edit fails at start-up (and in
    `brobygger doctor`), not on a young person's message."""
    directory = directory if directory is not None else CRISIS_DIR
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise CrisisRulesError(f"no crisis phrase files (*.yaml) in {directory}")
    languages = [_read_language(path) for path in paths]
    shared = _shared_slots(languages)
    own: list[Rule] = []
    others: list[Rule] = []
    implied: list[Rule] = []
    themes: list[Rule] = []
    markers: dict[str, list[re.Pattern[str]]] = {section: [] for section in _MARKER_SECTIONS}
    for language in languages:
        writer = {**shared, **language.words, **language.writer}
        someone_else = {**shared, **language.words, **language.someone_else}
        for section in _RULE_SECTIONS:
            for concern, template in language.rules[section]:
                where = f"{language.code}.yaml: {section}.{concern.value}"
                rule = (concern, _compile(template, writer, where))
                if section == "about_a_person":
                    own.append(rule)
                    other = _compile(template, someone_else, where)
                    if other.pattern != rule[1].pattern:  # no person in it: always the writer's
                        others.append((concern, other))
                elif section == "implied":
                    implied.append(rule)
                else:
                    themes.append(rule)
        for section in _MARKER_SECTIONS:
            markers[section] += [
                _compile(marker, writer, f"{language.code}.yaml: {section}")
                for marker in language.markers[section]
            ]
    return CrisisRules(
        languages=tuple(language.code for language in languages),
        own=own,
        others=others,
        implied=implied,
        themes=themes,
        misspellings=[m for language in languages for m in language.misspellings],
        personal=markers["personal"],
        distress=markers["distress"],
        third_party=markers["third_party"],
        professional=markers["professional"],
    )


@cache
def default_rules() -> CrisisRules:
    return load_rules()


_WORD = re.compile(r"\w+")


def _concerns(rules: Iterable[Rule], forms: tuple[str, ...]) -> set[Concern]:
    return {concern for concern, rx in rules if any(rx.search(form) for form in forms)}


def _present(markers: Iterable[re.Pattern[str]], forms: tuple[str, ...]) -> bool:
    return any(rx.search(form) for rx in markers for form in forms)


def _one_edit_apart(a: str, b: str) -> bool:
    """Damerau distance of at most one: the typos people make while upset on a phone."""
    if a == b:
        return True
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = sorted((a, b), key=len)
    if len(long_) - len(short) != 1:
        return False
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


def _misspelt_themes(
    misspellings: Iterable[tuple[Concern, str]], forms: tuple[str, ...]
) -> set[Concern]:
    """Whole words only: matching inside compounds would turn "selvmodsigende" into suicide."""
    words = {word for form in forms for word in _WORD.findall(form) if len(word) >= 6}
    return {
        concern
        for concern, target in misspellings
        for word in words
        if abs(len(word) - len(target)) <= 1 and _one_edit_apart(word, target)
    }


def assess(text: str, rules: CrisisRules | None = None) -> SafetyAssessment:
    """Decide whether a message shows crisis, mentions a crisis theme, or neither.

    Professional framing only ever lowers a level, and only when the writer does not also
    say how they feel: "I'm suicidal, are there projects for young people like me?" stays a
    crisis. First-person speech inside quotation marks in a practitioner's question is a quote
    ("a participant said “I want to die”"), not the practitioner's own crisis.
    """
    rules = rules or default_rules()
    cleaned = _clean(text)
    forms = _forms(cleaned)
    if not any(forms):
        return _SAFE

    professional = _present(rules.professional, forms)
    distressed = _present(rules.distress, forms)
    personal = _present(rules.personal, forms)
    third_party = _present(rules.third_party, forms)

    own = _concerns(rules.own, forms)
    implied = _concerns(rules.implied, forms)
    themes = _concerns(rules.themes, forms) | _misspelt_themes(rules.misspellings, forms)
    mentioned = own | implied | themes | _concerns(rules.others, forms)
    if not mentioned:
        return _SAFE

    practitioner = professional and not distressed
    crisis = _concerns(rules.own, _forms(_QUOTED.sub(" ", cleaned))) if practitioner else own
    if not practitioner:
        if personal:
            crisis |= implied | themes
        else:
            # "han"/"she" usually names the perpetrator in a violence phrase, but the one who
            # suffers in a suicide or self-harm phrase.
            crisis |= {c for c in implied if c is Concern.VIOLENCE_AT_HOME or not third_party}
    level = Level.CRISIS if crisis else Level.TOPIC
    return SafetyAssessment(level, frozenset(mentioned))


# --------------------------------------------------------------------------------------------
# Helplines (bot/data/helplines.yaml: numbers as given by the product owner)
# --------------------------------------------------------------------------------------------

HELPLINES_FILE = Path(__file__).parent / "data" / "helplines.yaml"


@dataclass(frozen=True)
class Helpline:
    name: str
    number: str
    # Excluded from hashing so helplines can still live in sets and dict keys.
    purpose: dict[str, str] = field(hash=False)


def _load_helplines(path: Path) -> tuple[dict[str, tuple[Helpline, ...]], dict[str, list[str]]]:
    data = _mapping(yaml.safe_load(path.read_text(encoding="utf-8")), path.name)
    helplines = {
        str(country): tuple(
            Helpline(str(line["name"]), str(line["number"]), dict(line["purpose"]))
            for line in lines
        )
        for country, lines in _mapping(data["countries"], path.name).items()
    }
    by_language = {
        str(lang): _strings(countries, f"{path.name}: countries_by_language.{lang}")
        for lang, countries in _mapping(data["countries_by_language"], path.name).items()
    }
    for countries in by_language.values():
        for country in countries:
            if country not in helplines:
                raise CrisisRulesError(f"{path.name}: no helplines for country {country!r}")
    return helplines, by_language


HELPLINES, _COUNTRIES_BY_LANGUAGE = _load_helplines(HELPLINES_FILE)


def helplines_for(language: str) -> dict[str, tuple[Helpline, ...]]:
    """Pick the countries whose helplines a user of this language can most likely call.

    English speakers may be in either country, so they get both. A fresh dict is returned so
    a caller that reorders or trims it cannot change what the next user sees.
    """
    primary = language.strip().casefold().replace("_", "-").split("-")[0]
    countries = _COUNTRIES_BY_LANGUAGE.get(primary) or _COUNTRIES_BY_LANGUAGE["default"]
    return {country: HELPLINES[country] for country in countries}
