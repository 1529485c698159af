"""UI strings: one folder per language (`bot/locales/<lang>/*.yaml`), keys namespaced by file.

A missing key is a bug, not a reason to fall back to English in a Swedish reply: the test suite
checks that every language has every key.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.knowledge.models import LANGUAGES

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LANGUAGE = "en"


def user_language(code: str | None) -> str:
    """Telegram's language_code (e.g. 'sv', 'da-DK', 'nb') to a supported language."""
    if not code:
        return DEFAULT_LANGUAGE
    base = code.split("-")[0].split("_")[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def _flatten(prefix: str, data: Any, into: dict[str, str]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, into)
    else:
        into[prefix] = str(data)


@cache
def catalog(lang: str) -> dict[str, str]:
    """All strings of one language as {"file.key": text}."""
    strings: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / lang).glob("*.yaml")):
        _flatten(path.stem, yaml.safe_load(path.read_text(encoding="utf-8")) or {}, strings)
    return strings


def translate(lang: str, key: str, **values: Any) -> str:
    """The string for `key` in `lang`, with {placeholders} filled in."""
    text = catalog(lang if lang in LANGUAGES else DEFAULT_LANGUAGE).get(key)
    if text is None:
        raise KeyError(f"missing UI string {key!r} for language {lang!r}")
    return text.format(**values) if values else text


class Translator:
    """`t("help.title")` bound to one language, handed to templates."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE

    def __call__(self, key: str, **values: Any) -> str:
        return translate(self.lang, key, **values)
