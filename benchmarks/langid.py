"""Language identification of short chat questions: lingua-language-detector vs py3langid.

The bot guesses the language of an uploaded document or a question among the languages it
speaks (en/sv/da); a wrong guess labels a Swedish document Danish. This compares both libraries,
each restricted to those three languages, on short questions written the way people type in a
chat (place names of the other language, no capital letters, letters without their accents,
names of projects, place names typed in lower case). Results go into docs/langid.md.

    .venv/bin/pip install -e ".[bench]"    # lingua-language-detector, not needed by the bot
    .venv/bin/python -m benchmarks.langid
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable

QUESTIONS: list[tuple[str, str]] = [
    # English
    ("en", "What is the budget of NEO?"),
    ("en", "Who coordinates atWork4NEETs?"),
    ("en", "When is the next meeting?"),
    ("en", "What is the weather in Gävle?"),
    ("en", "When was the conference in Östersund?"),
    ("en", "Who is the contact person for NEO in København?"),
    ("en", "which projects work with young mothers"),
    ("en", "any projects in Malmö or Århus?"),
    ("en", "how do we reach youths who never leave home"),
    ("en", "Tell me about BAGS4YOUTH"),
    ("en", "what did they learn in Trelleborg"),
    ("en", "Is there funding for mentoring?"),
    ("en", "projects about mental health"),
    ("en", "Who are the partners in Næstved?"),
    ("en", "what worked best for dropouts"),
    ("en", "who are the partners from københavn"),
    ("en", "Where is the meeting in Göteborg held?"),
    ("en", "how long did the project run"),
    ("en", "can you remind me about the Riga meeting"),
    ("en", "is there a meeting in göteborg soon"),
    # Swedish
    ("sv", "Vad är budgeten för NEO?"),
    ("sv", "Vilka partner har NEO?"),
    ("sv", "När träffas arbetsgrupperna?"),
    ("sv", "Finns det något möte i Gävle?"),
    ("sv", "Vilka deltog från Køge?"),
    ("sv", "vilka projekt jobbar med unga mammor"),
    ("sv", "finns det projekt i næstved"),
    ("sv", "hur når vi unga som sitter hemma"),
    ("sv", "berätta om BAGS4YOUTH"),
    ("sv", "vad lärde de sig i Trelleborg"),
    ("sv", "Finns det pengar till mentorskap?"),
    ("sv", "projekt om psykisk ohälsa"),
    ("sv", "vad fungerade bäst for avhoppare"),
    ("sv", "vem ar kontaktperson i Odense"),
    ("sv", "hur lange pagick projektet"),
    ("sv", "Kan du påminna mig om mötet i Riga?"),
    ("sv", "vilka projekt finns i århus"),
    ("sv", "Vilka länder är med i NEO?"),
    ("sv", "Vad hände på konferensen i København?"),
    ("sv", "Vem samordnar atWork4NEETs?"),
    # Danish
    ("da", "Hvad er budgettet for NEO?"),
    ("da", "Hvem er partnerne i NEO?"),
    ("da", "Hvornår mødes arbejdsgrupperne?"),
    ("da", "Hvilke lande deltager i BAGS4YOUTH?"),
    ("da", "Hvornår er mødet i Malmö?"),
    ("da", "hvilke projekter arbejder med unge mødre"),
    ("da", "er der projekter i Sverige"),
    ("da", "hvordan når vi unge der sidder derhjemme"),
    ("da", "hvad skete der i östersund"),
    ("da", "hvad lærte de i Trelleborg"),
    ("da", "Er der penge til mentorordninger?"),
    ("da", "projekter om mental sundhed"),
    ("da", "hvad virkede bedst for frafaldne"),
    ("da", "hvem er kontaktperson i Göteborg"),
    ("da", "hvor lang tid varede projektet"),
    ("da", "Kan du minde mig om mødet i Riga?"),
    ("da", "er der møder i malmö"),
    ("da", "Hvem koordinerer atWork4NEETs?"),
    ("da", "Hvad skete der på konferencen i Östersund?"),
    ("da", "hvornar er det naeste mode"),
]
LANGUAGES = ("en", "sv", "da")
REPEATS = 20


def lingua_detector() -> Callable[[str], str | None]:
    from lingua import Language, LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_languages(
        Language.ENGLISH, Language.SWEDISH, Language.DANISH
    ).build()

    def detect(text: str) -> str | None:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found else None

    return detect


def lingua_low_accuracy_detector() -> Callable[[str], str | None]:
    from lingua import Language, LanguageDetectorBuilder

    detector = (
        LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.SWEDISH, Language.DANISH)
        .with_low_accuracy_mode()
        .build()
    )

    def detect(text: str) -> str | None:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found else None

    return detect


def lingua_masked_detector() -> Callable[[str], str | None]:
    """lingua with the same name masking the bot applies before py3langid, for a fair match."""
    from bot.retrieval.language import _NAME_RE

    detect = lingua_detector()
    return lambda text: detect(_NAME_RE.sub(" ", text))


def py3langid_detector() -> Callable[[str], str | None]:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))

    def detect(text: str) -> str | None:
        return str(identifier.classify(text)[0])

    return detect


def bot_detector() -> Callable[[str], str | None]:
    from bot.retrieval.language import detect_language

    return detect_language


CANDIDATES: dict[str, Callable[[], Callable[[str], str | None]]] = {
    "lingua (high accuracy)": lingua_detector,
    "lingua (low accuracy)": lingua_low_accuracy_detector,
    "lingua (high accuracy), names masked": lingua_masked_detector,
    "py3langid": py3langid_detector,
}


def measure(name: str, make: Callable[[], Callable[[str], str | None]]) -> dict[str, object]:
    tracemalloc.start()
    started = time.perf_counter()
    detect = make()
    detect("warm up")
    load_s = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    wrong = [(lang, text, detect(text)) for lang, text in QUESTIONS if detect(text) != lang]
    per_language = {
        lang: sum(1 for want, text in QUESTIONS if want == lang and detect(text) == lang)
        for lang in LANGUAGES
    }
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _, text in QUESTIONS:
            detect(text)
        timings.append((time.perf_counter() - started) / len(QUESTIONS))
    return {
        "name": name,
        "correct": len(QUESTIONS) - len(wrong),
        "per_language": per_language,
        "wrong": wrong,
        "load_s": load_s,
        "python_peak_mb": peak / 1e6,
        "us_per_question": statistics.median(timings) * 1e6,
    }


def main() -> None:
    candidates = dict(CANDIDATES)
    candidates["bot: py3langid, names masked, fallback"] = bot_detector
    total = len(QUESTIONS)
    print(f"{total} questions ({', '.join(f'{total // 3} {lang}' for lang in LANGUAGES)})\n")
    print("| detector | accuracy | en | sv | da | load | per question |")
    print("|---|---|---|---|---|---|---|")
    results = [measure(name, make) for name, make in candidates.items()]
    for r in results:
        per = r["per_language"]
        assert isinstance(per, dict)
        print(
            f"| {r['name']} | {r['correct']}/{total} ({100 * int(str(r['correct'])) / total:.0f} %)"
            f" | {per['en']}/20 | {per['sv']}/20 | {per['da']}/20 | {r['load_s']:.2f} s"
            f" | {r['us_per_question']:.0f} µs |"
        )
    for r in results:
        print(f"\nWrong, {r['name']}:")
        for lang, text, got in r["wrong"]:  # type: ignore[attr-defined]
            print(f"  {lang} -> {got}: {text}")


if __name__ == "__main__":
    main()
