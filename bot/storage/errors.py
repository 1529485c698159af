"""The single exception type the storage layer lets escape."""

from __future__ import annotations

from bot.errors import BrobyggerError


class StorageError(BrobyggerError):
    """Raised for any database failure, so handlers need to catch only one type.

    The message always names the database file: on a server with several bots
    (or a test run with many temporary files) the path is what tells an
    operator which file to restore or delete.
    """
