"""Named domain errors: the edges (CLI, Telegram handlers) turn these into one friendly line."""

from __future__ import annotations


class BrobyggerError(Exception):
    """Base for errors we expect and explain to people instead of showing a traceback."""


class SettingsError(BrobyggerError):
    """A setting is missing or malformed; the message names the setting."""


class IndexNotReadyError(BrobyggerError):
    """No usable index: missing, built with another model, or in an older format."""


class IndexMismatchError(IndexNotReadyError):
    """The index was built with another embedding model or in another format: rebuild it."""


class IndexBuildError(BrobyggerError):
    """Building the index failed; the index being served is untouched."""


class KnowledgeError(BrobyggerError):
    """The knowledge base cannot be used at all (for example: no valid document)."""
