"""Jinja2 rendering for every reply, and splitting replies to fit Telegram's 4096 limit.

Templates produce Telegram HTML (parse mode HTML): autoescape is on, so anything that comes from a
user or a document is escaped; only the templates' own tags reach Telegram as markup.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel import dates as babel_dates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.i18n import Translator

TEMPLATES_DIR = Path(__file__).parent / "templates"
TELEGRAM_LIMIT = 4096
#: The Babel (CLDR) locale for each UI language, when it is not the language code itself.
#: English readers here are in Europe, so dates read "3 October 2026", not "October 3, 2026".
BABEL_LOCALES = {"en": "en_150"}
#: The countries of the knowledge base, by ISO 3166 code; any other code still gets its name.
REGION_COUNTRIES = frozenset(
    {"SE", "DK", "DE", "PL", "MT", "IT", "HR", "RO", "SI", "LU", "LT", "FI", "NO", "EE", "LV"}
)


@cache
def babel_locale(lang: str) -> Locale:
    """The CLDR locale for a UI language code; adding a language needs no table here."""
    return Locale.parse(BABEL_LOCALES.get(lang, lang))


def country_name(code: str, lang: str) -> str:
    """ "SE" -> "Sweden" / "Sverige"; an unknown code is shown as given."""
    return str(babel_locale(lang).territories.get(code.upper(), code))


def language_name(code: str, lang: str) -> str:
    """ "sv" -> "Swedish" in English, "svenska" in Swedish, "svensk" in Danish (CLDR's case)."""
    return str(babel_locale(lang).languages.get(code, code))


def format_date(value: date | datetime, lang: str) -> str:
    """A date people read naturally in their language: 3 October 2026, 3 oktober 2026,
    3. oktober 2026 (CLDR's long date format)."""
    day = value.date() if isinstance(value, datetime) else value
    return babel_dates.format_date(day, "long", locale=babel_locale(lang))


def format_day_month(day: int, month: int, lang: str) -> str:
    """A day of a month when the year is unknown: 3 October, 3 oktober, 3. oktober."""
    # A leap year, so 29 February can be written too; the skeleton shows no year.
    sample = date(2000, month, day)
    return babel_dates.format_skeleton("MMMMd", sample, locale=babel_locale(lang))


class Renderer:
    """One Jinja2 environment for the process; `render(template, lang, **context)`."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR) -> None:
        self.env = Environment(
            loader=FileSystemLoader(templates_dir),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=StrictUndefined,
            keep_trailing_newline=False,
        )
        self.env.filters["country"] = country_name

    def render(self, template: str, lang: str, **context: Any) -> str:
        t = Translator(lang)
        text = self.env.get_template(f"{template}.html.j2").render(
            t=t,
            lang=t.lang,
            fmt_date=lambda value: format_date(value, t.lang),
            fmt_day_month=lambda day, month: format_day_month(day, month, t.lang),
            language_name=lambda code: language_name(code, t.lang),
            **context,
        )
        return re.sub(r"\n{3,}", "\n\n", text).strip()


_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>")
_PIECE_RE = re.compile(r"(<[^>]+>)")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fitting_prefix(text: str, units: int) -> int:
    """How many characters of `text` fit in `units` UTF-16 code units (emoji count two)."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return index
    return len(text)


def _has_text(html: str) -> bool:
    return bool(_TAG_RE.sub("", html).strip())


def split_html(html: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split Telegram HTML into messages under `limit`: at paragraph boundaries when possible,
    then at line breaks, then at spaces. Tags open at a cut are closed and reopened, and no cut
    falls inside a tag or an entity, so every part parses on its own."""
    if _utf16_len(html) <= limit:
        return [html] if html.strip() else []
    budget = limit - 256  # room for closing and reopening tags at a cut
    parts: list[str] = []
    current = ""
    open_tags: list[tuple[str, str]] = []  # (name, full opening tag)

    def fits(text: str) -> bool:
        return _utf16_len(current) + _utf16_len(text) <= budget

    def append(text: str) -> None:
        nonlocal current
        for match in _TAG_RE.finditer(text):
            name = match.group(2).lower()
            if not match.group(1):
                open_tags.append((name, match.group(0)))
            elif open_tags and open_tags[-1][0] == name:
                open_tags.pop()
        current += text

    def flush() -> None:
        nonlocal current
        closing = "".join(f"</{name}>" for name, _ in reversed(open_tags))
        if current.strip():
            parts.append((current.rstrip() + closing).strip())
        current = "".join(tag for _, tag in open_tags)

    for block in re.split(r"(?<=\n\n)", html):
        if not fits(block) and current.strip():
            flush()
        if fits(block):
            append(block)
            continue
        for piece in (p for p in _PIECE_RE.split(block) if p):
            if piece.startswith("<"):
                if not fits(piece):
                    flush()
                append(piece)
                continue
            while not fits(piece):
                room = budget - _utf16_len(current)
                fitting = _fitting_prefix(piece, room)
                cut = max(piece.rfind("\n", 0, fitting), piece.rfind(" ", 0, fitting))
                if cut <= 0:
                    if _has_text(current):
                        flush()  # start the run on a fresh message, then cut it if still needed
                        continue
                    cut = max(fitting, 1)  # one unbreakable run longer than a message
                    entity = piece.rfind("&", 0, cut)
                    if entity > 0 and ";" not in piece[entity:cut]:
                        cut = entity  # never inside &amp; and friends
                append(piece[:cut])
                piece = piece[cut:].lstrip(" ")
                flush()
            append(piece)
    flush()
    return [part for part in parts if part.strip()]
