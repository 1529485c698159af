"""What kind of fact a question asks for, and whether a passage contains one.

A passage about the right project is still no answer to "what was the budget?" when it holds no
amount: this check lets the bot say "I don't know" instead of showing a near miss.
"""

from __future__ import annotations

import re

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "januari|februari|mars|maj|juni|juli|augusti|oktober|"
    "januar|februar|marts|august"
)

#: Question phrasings (en, sv, da) that ask for one kind of fact.
ASKS: dict[str, re.Pattern[str]] = {
    "money": re.compile(
        r"\b(budget\w*|budjet\w*|cost\w*|kost(ar|ade|er|ede|nad\w*)|price|pris\w*|how much|"
        r"hur mycket|hvor meget|belopp\w*|beløb\w*|amount|finansieringsbelopp)\b"
    ),
    "year": re.compile(r"\b(what|which) year|\bin what year|\b(vilket|hvilket) år\b|\bårtal\b"),
    "time": re.compile(
        r"\b(what time|at what time|vilken tid|hvad tid|klockan|klokken|"
        r"tidspunkt\w*)\b"
    ),
    "phone": re.compile(r"\b(phone|telephone|telefon\w*|mobil(nummer|nr)?)\b"),
    "web": re.compile(
        r"\b(web ?site|webpage|homepage|webbplats\w*|webbsida\w*|hemsida\w*|"
        r"hjemmeside\w*|webside\w*|url)\b"
    ),
    "email": re.compile(r"\b(e-?mail\w*|e-?post\w*|mailadress\w*)\b"),
    # "when it comes to" / "när man planerar" are no date questions: only question openings
    "date": re.compile(
        r"^\W*(when|när|hvornår)\b|\b(what|which) date\b|\bdate\b|\bdatum\w*|\bdato\w*|"
        r"\bwhen (is|was|will|does|did|are|were|do)\b|\bhvornår\b|"
        r"\bnär (är|var|hålls|hölls|startar|startade|slutar|slutade|börjar|började|träffas)\b"
    ),
    "count": re.compile(r"\b(how many|hur många|hvor mange|antal\w*|number of)\b"),
    "countries": re.compile(
        r"\b(which|what) countr|\b(vilka|vilket) länder|\bvilket land\b|"
        r"\bhvilke lande\b|\bhvilket land\b"
    ),
}

_COUNTRIES = (
    "sweden|sverige|denmark|danmark|germany|tyskland|poland|polen|malta|italy|italien|croatia|"
    "kroatien|romania|rumänien|rumænien|slovenia|slovenien|luxembourg|luxemburg|lithuania|"
    "litauen|finland|norway|norge|estonia|estland|latvia|lettland|letland|swedish-danish|"
    "svensk-dansk|svensk-danskt|svensk-danske"
)

#: What an answer of each kind looks like in a passage.
HAS: dict[str, re.Pattern[str]] = {
    "count": re.compile(
        r"\b\d[\d ]*\s+(people|persons|participants|young|youngsters|unga|"
        r"ungdomar|personer|deltagare|deltagere|unge)\b"
    ),
    "countries": re.compile(
        rf"\b({_COUNTRIES})\b|\((mt|it|hr|ro|si|lu|lt|se|dk|de|pl)\)|"
        r"\b(countries|länder|lande): "
    ),
    "money": re.compile(r"(€|\beur\b|\beuros?\b|\bsek\b|\bdkk\b|\bkr\b|\bkronor\b|\bkroner\b)"),
    "year": re.compile(r"\b(19|20)\d{2}\b"),
    "time": re.compile(r"(?<![\d,.])([01]?\d|2[0-3])[:.][0-5]\d(?![\d,.])"),
    "phone": re.compile(r"\+?\d{2,4}(?:[ -]?\d{2,4}){2,}"),
    "web": re.compile(r"(https?://|www\.|\b[\w-]+\.(eu|com|org|net|se|dk|info)\b)"),
    "email": re.compile(r"[\w.+-]+@[\w-]+\.\w+"),
    "date": re.compile(
        rf"\b\d{{1,2}}\.? ?({_MONTHS})\b|\b({_MONTHS}) \d{{1,2}}(st|nd|rd|th)?\b|"
        rf"\b\d{{1,2}}(st|nd|rd|th) of ({_MONTHS})\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b|"
        rf"\b\d{{1,2}}/\d{{1,2}}\b|\b(tredje|första|andra|fjärde|third|first|second) ({_MONTHS})\b"
    ),
}


def asked_types(question: str) -> set[str]:
    """The kinds of fact a question asks for ("when did…" asks for a date)."""
    lowered = question.casefold()
    return {kind for kind, pattern in ASKS.items() if pattern.search(lowered)}


def satisfies(kind: str, text: str) -> bool:
    return bool(HAS[kind].search(text.casefold()))


def answers_kinds(kinds: set[str], texts: list[str]) -> bool:
    """Every asked kind is present in at least one of the passages."""
    return all(any(satisfies(kind, text) for text in texts) for kind in kinds)
