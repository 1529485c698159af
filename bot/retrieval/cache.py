"""Embeddings cached by (model, passage text), so a rebuild encodes only new or changed passages.

Encoding is nearly all of a build's time (about an hour for 100 000 passages on two cores),
while an admin adding one report changes a few dozen. The cache is one SQLite file beside the
builds (`index/cache/embeddings.sqlite3`), so it survives every build and swap; a build that
fails leaves it usable, since a vector is only ever stored for exactly the text it was encoded
from. Keys are SHA-256 digests of the model name and the text: the model name covers the query
and passage prefixes too, as an embedder derives them from the name.

After a successful build, `prune` drops the vectors no passage of that build uses, so the file
stays the size of the knowledge base instead of growing with every edit.

Only the embedder's protocol members are used (`name`, `dimension`, `encode_passages`), so any
backend works, and `batch_size` is read when the embedder has one.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

CACHE_DIR = "cache"
CACHE_FILE = "embeddings.sqlite3"
#: SQLite's default limit on host parameters is 32 766; stay well below it.
_LOOKUP_BATCH = 900

Vectors = np.ndarray[Any, np.dtype[np.float32]]
Report = Callable[[str, int, int], None]


class PassageEncoder(Protocol):
    """What the cache needs of an embedder."""

    @property
    def name(self) -> str: ...

    def encode_passages(self, texts: Sequence[str]) -> Vectors: ...


@dataclass
class CacheStats:
    """What the last `encode_passages` call did: for the build report and the benchmark."""

    passages: int = 0
    cached: int = 0
    encoded: int = 0


def _key(model: str, text: str) -> bytes:
    return hashlib.sha256(model.encode("utf-8") + b"\0" + text.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors by (model, text). Safe to share between processes (SQLite locking; WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last = CacheStats()

    @classmethod
    def for_index(cls, index_dir: Path) -> EmbeddingCache:
        return cls(index_dir / CACHE_DIR / CACHE_FILE)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # A rowid table: rows of 1.5 KB (384 float32) make a WITHOUT ROWID table more
            # than twice as large on disk.
            conn.execute(
                "CREATE TABLE IF NOT EXISTS vectors ("
                " key BLOB PRIMARY KEY, model TEXT NOT NULL, dim INTEGER NOT NULL,"
                " vector BLOB NOT NULL)"
            )
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def lookup(self, model: str, texts: Sequence[str]) -> dict[int, Vectors]:
        """Cached vectors by position in `texts`. A damaged cache is a miss, never an error:
        it only costs encoding time."""
        keys = [_key(model, text) for text in texts]
        positions: dict[bytes, list[int]] = {}
        for position, key in enumerate(keys):
            positions.setdefault(key, []).append(position)
        found: dict[int, Vectors] = {}
        try:
            conn = self._connect()
        except sqlite3.Error as error:
            log.warning(
                "the embedding cache %s is unusable (%s); encoding everything", self.path, error
            )
            return found
        try:
            unique = list(positions)
            for start in range(0, len(unique), _LOOKUP_BATCH):
                batch = unique[start : start + _LOOKUP_BATCH]
                marks = ",".join("?" * len(batch))
                rows = conn.execute(
                    f"SELECT key, dim, vector FROM vectors WHERE key IN ({marks})", batch
                ).fetchall()
                for key, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape != (dim,):
                        continue
                    for position in positions[key]:
                        found[position] = vector
        except sqlite3.Error as error:
            log.warning("reading the embedding cache failed (%s); encoding everything", error)
            return {}
        finally:
            conn.close()
        return found

    def store(self, model: str, texts: Sequence[str], vectors: Vectors) -> None:
        """Remember vectors; a failure to write is logged and the build goes on."""
        rows = [
            (_key(model, text), model, int(vector.shape[0]), np.ascontiguousarray(vector).tobytes())
            for text, vector in zip(texts, vectors, strict=True)
        ]
        try:
            conn = self._connect()
            try:
                with conn:
                    conn.executemany(
                        "INSERT OR REPLACE INTO vectors (key, model, dim, vector)"
                        " VALUES (?, ?, ?, ?)",
                        rows,
                    )
            finally:
                conn.close()
        except sqlite3.Error as error:
            log.warning("could not write the embedding cache %s: %s", self.path, error)

    def prune(self, model: str, texts: Sequence[str]) -> int:
        """Keep only the vectors of `texts` under `model`; returns how many were dropped."""
        keep = {_key(model, text) for text in texts}
        try:
            conn = self._connect()
            try:
                with conn:
                    conn.execute("CREATE TEMP TABLE keep (key BLOB PRIMARY KEY) WITHOUT ROWID")
                    conn.executemany("INSERT OR IGNORE INTO keep VALUES (?)", ((k,) for k in keep))
                    cursor = conn.execute(
                        "DELETE FROM vectors WHERE key NOT IN (SELECT key FROM keep)"
                    )
                    dropped = cursor.rowcount
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # keep the -wal file small
            finally:
                conn.close()
        except sqlite3.Error as error:
            log.warning("could not prune the embedding cache %s: %s", self.path, error)
            return 0
        return max(dropped, 0)

    def count(self) -> int:
        try:
            conn = self._connect()
            try:
                return int(conn.execute("SELECT count(*) FROM vectors").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.Error:
            return 0

    def encode_passages(
        self,
        embedder: PassageEncoder,
        texts: Sequence[str],
        progress: Report | None = None,
        *,
        step: int | None = None,
    ) -> Vectors:
        """Vectors for all `texts`, in order: cached ones read, the rest encoded in batches
        (reporting progress as `("embedding", done, total)`) and stored. Afterwards the cache
        holds exactly these texts' vectors: what the next build of this knowledge needs."""
        report = progress or (lambda stage, done, total: None)
        total = len(texts)
        found = self.lookup(embedder.name, texts)
        missing = [position for position in range(total) if position not in found]
        # the same text twice in one build is encoded once
        first_of: dict[str, int] = {}
        to_encode: list[int] = []
        for position in missing:
            if texts[position] not in first_of:
                first_of[texts[position]] = position
                to_encode.append(position)
        # Sorted by length, so each call pads its texts to similar lengths: the model then does
        # no more work than one call over all texts would (which sorts by length internally).
        to_encode.sort(key=lambda position: len(texts[position]))
        batch = step or max(int(getattr(embedder, "batch_size", 64)) * 4, 256)
        done = total - len(missing)
        encoded: dict[int, Vectors] = {}
        for start in range(0, len(to_encode), batch):
            report("embedding", done, total)
            positions = to_encode[start : start + batch]
            chunk = [texts[position] for position in positions]
            vectors = embedder.encode_passages(chunk)
            self.store(embedder.name, chunk, vectors)
            for position, vector in zip(positions, vectors, strict=True):
                encoded[position] = vector
            done += len(positions)
        report("embedding", total, total)
        for position in missing:
            found[position] = encoded[first_of[texts[position]]]
        self.last = CacheStats(total, total - len(missing), len(to_encode))
        self.prune(embedder.name, texts)
        if total == 0:
            dimension = int(getattr(embedder, "dimension", 0))
            return np.zeros((0, dimension), dtype=np.float32)
        return np.ascontiguousarray(np.vstack([found[p] for p in range(total)]), dtype=np.float32)
