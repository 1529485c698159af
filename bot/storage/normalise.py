"""Normalisation of unanswered question texts before they are stored."""

from __future__ import annotations

import re
from typing import Final

MAX_QUESTION_CHARS: Final[int] = 500

_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
# Six or more digits, optionally separated by spaces, dashes, dots, slashes or
# a leading '+': phone numbers and Nordic personal identity numbers
# (personnummer, CPR). Years and ages have fewer digits and survive.
_LONG_NUMBER = re.compile(r"\+?\d(?:[\s\-./]?\d){5,}")
_WHITESPACE = re.compile(r"\s+")


def normalise_question(text: str) -> str:
    """Return the form in which an unanswered question is stored.

    Collapsing whitespace and case lets repeats of the same question be
    counted together in ``Storage.gaps``. E-mail addresses and long numbers
    are replaced because young people sometimes type their contact details or
    identity number into a question; the gap report never needs them and
    storing them would make an anonymous log identifying. The 500-character
    cap bounds what a single message can put on disk.
    """
    text = _EMAIL.sub("[email]", text)
    text = _LONG_NUMBER.sub("[number]", text)
    text = _WHITESPACE.sub(" ", text).strip().lower()
    return text[:MAX_QUESTION_CHARS].rstrip()
