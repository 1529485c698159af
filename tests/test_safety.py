"""The crisis screen, tested on messages as people actually type them.

Each case is labelled so that a failure names the situation that regressed, not an index.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.knowledge.models import LANGUAGES
from bot.safety import (
    CRISIS_DIR,
    HELPLINES,
    Concern,
    CrisisRulesError,
    Helpline,
    Level,
    SafetyAssessment,
    assess,
    helplines_for,
    load_rules,
)

S, H, V = Concern.SUICIDE, Concern.SELF_HARM, Concern.VIOLENCE_AT_HOME
ZW = "\u200b"  # zero-width space
ZWJ = "\u200d"  # zero-width joiner

CRISIS = [
    # English
    pytest.param("I don't want to be here anymore", {S}, id="en-indirect-not-be-here"),
    pytest.param("everyone would be better off without me", {S}, id="en-better-off-without-me"),
    pytest.param("honestly i just want to die 😭😭", {S}, id="en-want-to-die-emoji"),
    pytest.param("I'M SUICIDAL", {S}, id="en-uppercase-suicidal"),
    pytest.param("i think about sucide every day", {S}, id="en-typo-sucide"),
    pytest.param("I keep thinking about killing myself", {S}, id="en-thinking-killing-myself"),
    pytest.param("i cant go on like this", {S}, id="en-cant-go-on-no-apostrophe"),
    pytest.param("I wish I was dead", {S}, id="en-wish-dead"),
    pytest.param("nobody would even miss me", {S}, id="en-nobody-would-miss-me"),
    pytest.param("I'm going to end it all", {S}, id="en-end-it-all"),
    pytest.param("I took too many pills", {S}, id="en-overdose"),
    pytest.param(f"I want to k{ZW}ill myself", {S}, id="en-zero-width-in-kill"),
    pytest.param("I've been cutting myself again", {H}, id="en-cutting-myself"),
    pytest.param("I hurt myself on purpose when it gets bad", {H}, id="en-hurt-myself-on-purpose"),
    pytest.param("I self harm, is that weird?", {H}, id="en-i-self-harm"),
    pytest.param("my stepdad hits me when he's drunk", {V}, id="en-stepdad-hits-me"),
    pytest.param("I'm scared to go home tonight", {V}, id="en-scared-to-go-home"),
    pytest.param("my dad beats my mum and I can't sleep", {V}, id="en-witnessing-violence"),
    pytest.param(
        "I'm suicidal, are there projects for young people like me?",
        {S},
        id="en-suicidal-despite-project-words",
    ),
    # Swedish
    pytest.param("jag orkar inte leva längre", {S}, id="sv-orkar-inte-leva"),
    pytest.param("vill inte finnas", {S}, id="sv-vill-inte-finnas-no-pronoun"),
    pytest.param("Ibland vill jag bara dö", {S}, id="sv-inverted-vill-jag-do"),
    pytest.param("tänker ta livet av mig", {S}, id="sv-ta-livet-av-mig"),
    pytest.param("jag har sjalvmordstankar", {S}, id="sv-no-diacritics-compound"),
    pytest.param("jag tänker på självmord hela tiden", {S}, id="sv-tanker-pa-sjalvmord"),
    pytest.param("alla skulle ha det bättre utan mig", {S}, id="sv-battre-utan-mig"),
    pytest.param(f"Jag  SKÄR  mig i armarna{ZWJ}", {H}, id="sv-skar-mig-spaces-casing"),
    pytest.param(f"jag sk{ZW}är mig igen", {H}, id="sv-zero-width-in-skar"),
    pytest.param("min pappa slår mig", {V}, id="sv-pappa-slar-mig"),
    pytest.param("han slår mig hemma", {V}, id="sv-han-slar-mig-hemma"),
    pytest.param("jag är rädd för att gå hem", {V}, id="sv-radd-att-ga-hem"),
    pytest.param("pappa slår mamma när han är full", {V}, id="sv-pappa-slar-mamma"),
    pytest.param("min pappa slår mig och jag vill dö", {S, V}, id="sv-two-concerns"),
    # Danish
    pytest.param("jeg kan ikke mere, vil bare forsvinde", {S}, id="da-kan-ikke-mere-forsvinde"),
    pytest.param("JEG VIL BARE DØ", {S}, id="da-uppercase-vil-do"),
    pytest.param("jeg har tænkt på at tage mit eget liv", {S}, id="da-tage-mit-eget-liv"),
    pytest.param("jeg har selvmordstanker", {S}, id="da-selvmordstanker"),
    pytest.param("sjælvmord tænker jeg på hver dag", {S}, id="da-misspelt-sjaelvmord"),
    pytest.param("alle ville have det bedre uden mig", {S}, id="da-bedre-uden-mig"),
    pytest.param("jeg   vil    ikke  leve mere 💔", {S}, id="da-extra-spaces-emoji"),
    pytest.param("jeg skærer i mig selv", {H}, id="da-skaerer-i-mig-selv"),
    pytest.param("jeg skaerer i mig selv", {H}, id="da-digraph-ae"),
    pytest.param("han slår mig hjemme", {V}, id="da-han-slar-mig-hjemme"),
    pytest.param("min mor slaar mig", {V}, id="da-digraph-aa"),
    pytest.param("jeg tør ikke gå hjem, min far er voldelig", {V}, id="da-tor-ikke-ga-hjem"),
]

TOPIC = [
    # English
    pytest.param(
        "Are there projects on suicide prevention for young people?", {S}, id="en-projects"
    ),
    pytest.param(
        "What methods do practitioners use to support young people who self-harm?",
        {H},
        id="en-methods-self-harm",
    ),
    pytest.param("Statistics on domestic violence among NEETs in Sweden?", {V}, id="en-statistics"),
    pytest.param(
        "A participant told me “I want to die” – how do we respond?", {S}, id="en-quoted-speech"
    ),
    pytest.param(
        "How should staff respond when a young person says they want to kill themselves?",
        {S},
        id="en-third-person",
    ),
    pytest.param("suicide", {S}, id="en-bare-word"),
    pytest.param(
        "I work with NEETs, how can I spot warning signs of self-harm?",
        {H},
        id="en-practitioner-i",
    ),
    # Swedish
    pytest.param("Finns det projekt om självmordsprevention?", {S}, id="sv-projekt"),
    pytest.param("statistik om våld i hemmet", {V}, id="sv-statistik"),
    pytest.param(
        "Hur arbetar ni med självskadebeteende bland unga?", {H}, id="sv-sjalvskadebeteende"
    ),
    pytest.param(
        "Finns det forskning om unga som vill ta livet av sig?", {S}, id="sv-third-person"
    ),
    pytest.param(
        "Vilka metoder finns för att förebygga våld i nära relationer?", {V}, id="sv-forebygga"
    ),
    pytest.param(
        "Jag jobbar med unga och behöver material om självskada", {H}, id="sv-practitioner-jag"
    ),
    # Danish
    pytest.param("Hvilke projekter arbejder med selvskade blandt unge?", {H}, id="da-projekter"),
    pytest.param(
        "Hvordan arbejder vi med forebyggelse af selvmord blandt unge?", {S}, id="da-forebyggelse"
    ),
    pytest.param("Findes der statistik om vold i hjemmet?", {V}, id="da-statistik"),
    pytest.param('Hvad gør vi, når en ung siger "jeg vil dø"?', {S}, id="da-quoted-speech"),
    pytest.param("Har I materiale om unge, der skærer i sig selv?", {H}, id="da-third-person"),
]

NONE = [
    # English
    pytest.param("When is the next project meeting?", id="en-meeting"),
    pytest.param("What's the budget for atWork4NEETs?", id="en-budget"),
    pytest.param("Is there a killer app for youth workers?", id="en-killer-app"),
    pytest.param("We are cutting costs this year", id="en-cutting-costs"),
    pytest.param("It feels like a dead end job", id="en-dead-end-job"),
    pytest.param("I'm dying to know the budget", id="en-dying-to-know"),
    pytest.param("the deadline kills me", id="en-deadline-kills-me"),
    pytest.param("this is killing me", id="en-killing-me-hyperbole"),
    pytest.param("kill the process and restart the bot", id="en-kill-process"),
    pytest.param("My colleague hit me up about the conference", id="en-hit-me-up"),
    pytest.param("She beat me at chess again", id="en-beat-me-at-chess"),
    pytest.param("I cut myself some slack today", id="en-cut-myself-slack"),
    pytest.param("The office is 5 kms from the station", id="en-kms-distance"),
    # Swedish
    pytest.param("Kan du slå upp mötet i kalendern?", id="sv-sla-upp-motet"),
    pytest.param("Vi måste skära ner på kostnaderna", id="sv-skara-ner"),
    pytest.param("Det slår mig att projektet saknar budget", id="sv-det-slar-mig"),
    pytest.param("När är nästa möte?", id="sv-mote"),
    pytest.param("Vilka projekt finns i Skåne?", id="sv-projekt"),
    pytest.param("Jag skar mig i fingret när jag lagade mat", id="sv-accidental-cut"),
    pytest.param("Han slog mig i schack igen", id="sv-slog-mig-i-schack"),
    pytest.param("Färgerna skär sig med logotypen", id="sv-fargerna-skar-sig"),
    pytest.param("Jag vill dock veta mer om finansieringen", id="sv-vill-dock"),
    # Danish
    pytest.param("Kan du slå op i bogen?", id="da-sla-op-i-bogen"),
    pytest.param("Vi skal skære ned på budgettet", id="da-skaere-ned"),
    pytest.param("hvornår slutter projektet", id="da-slutter-projektet"),
    pytest.param("Hvilke projekter findes i Danmark?", id="da-projekter"),
    pytest.param("Man kan ikke mere søge støtte via kommunen", id="da-kan-ikke-mere-soge"),
    pytest.param("Jeg kan ikke mere end to dage om ugen", id="da-kan-ikke-mere-end"),
    pytest.param("Det er et selvmodsigende argument", id="da-selvmodsigende"),
    pytest.param("Jeg vil gerne dø af grin", id="da-do-af-grin"),
    pytest.param("Han slår mig altid i fifa", id="da-slar-mig-i-fifa"),
    # Not text at all
    pytest.param("", id="empty"),
    pytest.param(f"  {ZW} 👍  ", id="only-invisible-and-emoji"),
]


@pytest.mark.parametrize(("text", "concerns"), CRISIS)
def test_personal_distress_is_a_crisis(text: str, concerns: set[Concern]) -> None:
    assert assess(text) == SafetyAssessment(Level.CRISIS, frozenset(concerns))


@pytest.mark.parametrize(("text", "concerns"), TOPIC)
def test_professional_mentions_are_a_topic(text: str, concerns: set[Concern]) -> None:
    assert assess(text) == SafetyAssessment(Level.TOPIC, frozenset(concerns))


@pytest.mark.parametrize("text", NONE)
def test_everyday_messages_do_not_trigger(text: str) -> None:
    assert assess(text) == SafetyAssessment(Level.NONE, frozenset())


def test_case_counts_meet_the_brief() -> None:
    assert len(CRISIS) >= 25
    assert len(TOPIC) >= 12
    assert len(NONE) >= 25


@pytest.mark.parametrize(
    ("language", "countries"),
    [
        pytest.param("sv", ["SE"], id="sv"),
        pytest.param("da", ["DK"], id="da"),
        pytest.param("en", ["SE", "DK"], id="en"),
        pytest.param("sv-SE", ["SE"], id="sv-region-tag"),
        pytest.param("DA", ["DK"], id="da-uppercase"),
        pytest.param("de", ["SE", "DK"], id="other-language"),
        pytest.param("", ["SE", "DK"], id="unknown"),
    ],
)
def test_helplines_for_language(language: str, countries: list[str]) -> None:
    chosen = helplines_for(language)
    assert list(chosen) == countries
    assert all(chosen[country] == HELPLINES[country] for country in countries)


def test_helplines_are_exactly_the_given_numbers() -> None:
    numbers = {
        country: [(line.name, line.number) for line in lines]
        for country, lines in HELPLINES.items()
    }
    assert numbers == {
        "SE": [
            ("112", "112"),
            ("Mind Självmordslinjen", "90101"),
            ("BRIS", "116 111"),
            ("1177", "1177"),
        ],
        "DK": [
            ("112", "112"),
            ("Livslinien", "70 201 201"),
            ("Børnetelefonen", "116 111"),
        ],
    }


@pytest.mark.parametrize(
    "line", [line for lines in HELPLINES.values() for line in lines], ids=lambda h: h.name
)
def test_every_helpline_explains_itself_in_each_language(line: Helpline) -> None:
    assert set(line.purpose) == {"en", "sv", "da"}
    assert all(text.strip() for text in line.purpose.values())


def test_helplines_for_returns_a_copy() -> None:
    helplines_for("en").clear()
    assert set(helplines_for("en")) == {"SE", "DK"}


# ---- the phrases are data: one file per language, read by the engine ------------------------

FINNISH = """\
language: fi
words:
  ADV:
    any_number_of: [vaan, todella]
person:
  I:
    writer: [mina]
    someone_else: [han, he]
guards:
  figurative_prepositions: []
about_a_person:
  suicide:
    - '<I> <ADV>haluan kuolla<LITERAL>'
themes:
  suicide:
    - '\\w*itsemurh\\w*'
personal:
  - 'mina|minun|minua'
professional:
  - 'nuoret|nuorille|hankkeet'
"""


def test_a_language_is_added_by_adding_a_file(tmp_path: Path) -> None:
    for existing in CRISIS_DIR.glob("*.yaml"):
        (tmp_path / existing.name).write_text(existing.read_text(encoding="utf-8"), "utf-8")
    (tmp_path / "fi.yaml").write_text(FINNISH, encoding="utf-8")
    rules = load_rules(tmp_path)
    assert rules.languages == ("da", "en", "fi", "sv")
    assert assess("mina vaan haluan kuolla", rules) == SafetyAssessment(
        Level.CRISIS, frozenset({S})
    )
    assert assess("hankkeet itsemurhien ehkäisyyn nuorille", rules).level is Level.TOPIC
    # the other languages still work alongside, with guards pooled from every file
    assert assess("I want to die of embarrassment", rules).level is Level.NONE
    assert assess("jag vill dö", rules).level is Level.CRISIS


def test_the_shipped_files_cover_the_bots_languages() -> None:
    assert set(load_rules().languages) == set(LANGUAGES)
    assert {path.stem for path in CRISIS_DIR.glob("*.yaml")} == set(LANGUAGES)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("about_a_person:\n  suicide:\n    - '<NOPE> die'\n", "unknown word list <NOPE>"),
        ("about_a_person:\n  sadness:\n    - 'so sad'\n", "unknown concern 'sadness'"),
        ("themes:\n  suicide:\n    - '(?:unclosed'\n", "themes.suicide"),
        ("words:\n  ADV:\n    some_of: [a, b]\n", "words.ADV"),
        ("personal: 'not a list'\n", "personal"),
        ("about_a_person: [\n", "not valid YAML"),
    ],
)
def test_a_broken_phrase_file_is_named_at_start_up(tmp_path: Path, text: str, named: str) -> None:
    (tmp_path / "xx.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CrisisRulesError, match=re.escape(named)) as caught:
        load_rules(tmp_path)
    assert "xx.yaml" in str(caught.value)
