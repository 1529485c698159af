"""Incremental reindex: what adding one document costs once embeddings are cached by (model,
passage text), against a full build, and whether a cold full build still runs at the speed of
raw batched encoding. Results go into their own section of docs/benchmarks.md (between
`<!-- incremental:start -->` and `<!-- incremental:end -->`).

    .venv/bin/python -m benchmarks.incremental            # ~8 min on 2 cores; prints only
    .venv/bin/python -m benchmarks.incremental --write    # and writes the section
    .venv/bin/python -m benchmarks.incremental --quick    # smaller sizes, ~2 min

Two parts, because 100 000 real encodes take about an hour on two cores:

1. **Real encoding** on a corpus of `real` synthetic en/sv/da passages (benchmarks/corpus.py),
   every vector computed by the bundled model: raw batched `encode_passages` of all texts, a
   cold `build_index` (empty cache), then the same knowledge plus one new document.
2. **100 000 passages** with the cache filled beforehand (the real vectors of part 1, tiled with
   noise, written straight into the cache): a rebuild with nothing changed, then the rebuild
   after adding the same new document, encoded for real. Both are measured. A cold 100 000
   build is not run: its time is estimated as 100 000 / (raw encode rate of part 1) plus the
   measured no-change rebuild (everything but encoding), and the report says so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bot.knowledge import load_knowledge
from bot.retrieval.cache import EmbeddingCache
from bot.retrieval.chunks import Chunk
from bot.retrieval.embedder import Embedder, Vectors
from bot.retrieval.store import build_index

from .common import KNOWLEDGE, REPO, Check, Section, Table, machine_info, median, secs
from .corpus import CHUNKS_PER_DOCUMENT, synthetic_chunks, tile_vectors

START, END = "<!-- incremental:start -->", "<!-- incremental:end -->"
DOC = REPO / "docs" / "benchmarks.md"
ADD_GOAL = 0.05
RATE_GOAL = 0.9
LARGE = 100_000


class CountingEmbedder:
    """The real embedder, counting the passages it is asked to encode."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.name = embedder.name
        self.batch_size = embedder.batch_size
        self.encoded = 0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        self.encoded += len(texts)
        return self.inner.encode_passages(texts)


def new_document(passages: int = CHUNKS_PER_DOCUMENT) -> list[Chunk]:
    """One added report: `passages` passages no other chunk shares (another seed)."""
    return [
        replace(chunk, id=f"added-report#{n}", document="added-report", position=n)
        for n, chunk in enumerate(synthetic_chunks(passages, seed=99))
    ]


ENCODING_S: dict[Path, float] = {}


def _build(embedder: CountingEmbedder, index_dir: Path, chunks: list[Chunk]) -> tuple[float, int]:
    """(seconds, passages encoded) of one build; the time until the indexing stage starts
    (cache lookups and encoding) is kept in ENCODING_S."""
    kb = load_knowledge(KNOWLEDGE)  # only its checksum is used when chunks are given
    before = embedder.encoded
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "indexing" and done == 0:
            marks["indexing"] = time.perf_counter()

    started = time.perf_counter()
    build_index(kb, embedder, index_dir, chunks=chunks, progress=progress)  # type: ignore[arg-type]
    ended = time.perf_counter()
    ENCODING_S[index_dir] = marks.get("indexing", ended) - started
    return ended - started, embedder.encoded - before


def measure_incremental(
    embedder: Embedder, root: Path, *, real: int = 2_000, large: int = LARGE, rounds: int = 2
) -> Section:
    section = Section("incremental", "Incremental reindex (cache by model and passage text)")
    counting = CountingEmbedder(embedder)
    added = new_document()
    corpus = synthetic_chunks(max(real, 1))[:real]
    texts = [c.text for c in corpus]

    # --- part 1: real encoding --------------------------------------------------------------
    # raw and cold build alternate (order flipping each round): the machine is shared, and a
    # load spike should not land on one side only; the ratio is taken per round, then the median
    raw_times: list[float] = []
    full_times: list[float] = []
    vectors: Vectors | None = None
    small = root / "incremental-small"
    full_encoded = 0
    for round_ in range(rounds):
        for step in ("raw", "build") if round_ % 2 == 0 else ("build", "raw"):
            if step == "raw":
                started = time.perf_counter()
                vectors = embedder.encode_passages(texts)
                raw_times.append(time.perf_counter() - started)
            else:
                shutil.rmtree(small, ignore_errors=True)  # a cold cache every round
                seconds, full_encoded = _build(counting, small, corpus)
                full_times.append(seconds)
    assert vectors is not None
    rate_ratio = median([raw / full for raw, full in zip(raw_times, full_times, strict=True)])
    raw_s, full_s = median(raw_times), median(full_times)
    raw_rate = real / raw_s
    add_s, add_encoded = _build(counting, small, corpus + added)
    same_s, same_encoded = _build(counting, small, corpus + added)
    full_rate = raw_rate * rate_ratio

    # --- part 2: 100 000 passages, cache filled beforehand ----------------------------------
    big_chunks = synthetic_chunks(large)
    large_dir = root / "incremental-large"
    started = time.perf_counter()
    cache = EmbeddingCache.for_index(large_dir)
    big_vectors = tile_vectors(vectors, large)
    step = 10_000
    for start in range(0, large, step):
        part = big_chunks[start : start + step]
        cache.store(embedder.name, [c.text for c in part], big_vectors[start : start + step])
    fill_s = time.perf_counter() - started
    del big_vectors
    nochange_s, nochange_encoded = _build(counting, large_dir, big_chunks)
    large_add_s, large_add_encoded = _build(counting, large_dir, big_chunks + added)
    large_add_encode_s = ENCODING_S[large_dir]
    cache_mib = cache.path.stat().st_size / 2**20
    est_encode_s = large / raw_rate
    est_full_s = est_encode_s + nochange_s
    est_rate_ratio = (large / est_full_s) / raw_rate

    # --- checks -------------------------------------------------------------------------------
    large_ratio = large_add_s / est_full_s
    section.checks += [
        Check(
            f"Add one document ({len(added)} passages) to {large:,} passages",
            secs(large_add_s),
            f"full build ≈ {secs(est_full_s)} (estimated)",
            large_ratio,
            f"≤ {ADD_GOAL:.0%} of a full build",
            large_ratio <= ADD_GOAL and large_add_encoded == len(added),
            value_text=f"{large_ratio:.1%}",
        ),
        Check(
            f"Passages encoded when adding one document to {real:,} (all real)",
            f"{add_encoded} encoded",
            f"the document's {len(added)} passages",
            float(add_encoded),
            "only the new passages",
            add_encoded == len(added),
            value_text=f"{add_encoded} of {real + len(added):,}",
        ),
        Check(
            f"Full build rate, {real:,} passages, cold cache",
            f"{full_rate:.1f} passages/s (median of per-round ratios)",
            f"raw batched encode {raw_rate:.1f} passages/s",
            rate_ratio,
            f"≥ {RATE_GOAL}×",
            rate_ratio >= RATE_GOAL,
        ),
        Check(
            f"Full build rate, {large:,} passages (estimated)",
            f"{large / est_full_s:.1f} passages/s",
            f"raw batched encode {raw_rate:.1f} passages/s",
            est_rate_ratio,
            f"≥ {RATE_GOAL}×",
            est_rate_ratio >= RATE_GOAL,
        ),
    ]
    table = Table(["Build", "Passages", "Encoded by the model", "Time", "How obtained"])
    table.rows += [
        [
            "raw `encode_passages` (one batched call)",
            f"{real:,}",
            f"{real:,}",
            " / ".join(secs(t) for t in raw_times),
            f"measured, {len(raw_times)} round(s)",
        ],
        [
            "cold full build (empty cache)",
            f"{real:,}",
            f"{full_encoded:,}",
            " / ".join(secs(t) for t in full_times),
            f"measured, {len(full_times)} round(s), alternating with raw",
        ],
        [
            "+ one document",
            f"{real + len(added):,}",
            f"{add_encoded:,}",
            secs(add_s),
            f"measured ({add_s / full_s:.1%} of the cold build's median)",
        ],
        [
            "rebuild, nothing changed",
            f"{real + len(added):,}",
            f"{same_encoded:,}",
            secs(same_s),
            "measured",
        ],
        [
            "filling the cache with tiled vectors (setup, not a build)",
            f"{large:,}",
            "0",
            secs(fill_s),
            "measured",
        ],
        [
            "rebuild, nothing changed",
            f"{large:,}",
            f"{nochange_encoded:,}",
            secs(nochange_s),
            "measured",
        ],
        [
            "+ one document",
            f"{large + len(added):,}",
            f"{large_add_encoded:,}",
            secs(large_add_s),
            "measured",
        ],
        [
            "cold full build",
            f"{large:,}",
            f"{large:,}",
            f"≈ {secs(est_full_s)}",
            f"estimated: {large:,} / {raw_rate:.1f} passages/s = {secs(est_encode_s)} encoding "
            f"+ {secs(nochange_s)} for everything else (the no-change rebuild)",
        ],
    ]
    section.add(
        table.markdown(),
        f"Embedding cache for {large:,} passages on disk: {cache_mib:,.0f} MiB "
        f"(`index/cache/embeddings.sqlite3`).",
        "Method: part 1 encodes everything with the bundled model (synthetic en/sv/da passages of "
        "300–500 characters from benchmarks/corpus.py); the new document is 25 further passages "
        "from another seed. Part 2 fills the cache with part 1's real vectors tiled with noise "
        "(no encoding), builds once with nothing to encode, then adds the same document, whose "
        "passages the model really encodes. A cold build of that size (an hour or more on two "
        "cores) is not run; its time is the measured raw encode rate applied to all "
        "passages plus the measured cost of everything else (FAISS HNSW, BM25, chunk store, "
        "cache lookups), which is what the no-change rebuild consists of. Raw encoding and the "
        "cold build alternate over the rounds and the rate ratio is the median of per-round "
        "ratios; the other builds run once. The machine is shared, so expect ±20 % on "
        "absolute times.",
        f"Of the {secs(large_add_s)} that adding the document to {large:,} passages took, "
        f"{secs(large_add_encode_s)} went to cache lookups and encoding its {len(added)} "
        "passages; the rest is rebuilding the FAISS HNSW and BM25 indexes and writing the build "
        "(they are rebuilt from scratch rather than updated in place, which keeps the atomic "
        "swap and the 'failed build leaves the old index serving' guarantee simple).",
    )
    return section


def write_section(path: Path, section: Section, machine: dict[str, str], command: str) -> None:
    """Replace only what lies between the incremental markers; append them when missing."""
    info = ", ".join(
        f"{key} {machine[key]}"
        for key in ("date", "code", "nproc", "cpu", "torch")
        if key in machine
    )
    body = "\n".join(
        [
            "## Incremental reindex",
            "",
            f"Written by `benchmarks/incremental.py` (`{command}`, also part of `make bench`); "
            "do not edit by hand. " + info + ".",
            "",
            section.markdown(),
        ]
    )
    block = f"{START}\n{body.rstrip()}\n{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start, end = text.find(START), text.find(END)
    if start == -1 or end == -1 or end < start:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    else:
        text = text[:start] + block + text[end + len(END) :]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def print_checks(section: Section) -> None:
    for check in section.checks:
        print(
            f"[{section.key}] {check.name}: {check.figure} vs {check.baseline} → "
            f"{check.shown_value()} (goal {check.goal}): {'met' if check.met else 'NOT MET'}",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.incremental", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 real and 20,000 large passages")
    parser.add_argument("--write", action="store_true", help="write the docs/benchmarks.md section")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    os.chdir(REPO)
    machine = machine_info()
    from bot.settings import BUNDLED_MODEL

    embedder = Embedder(BUNDLED_MODEL)
    embedder.encode_passages(["warm-up"])  # model load is not part of any build figure
    root = Path(tempfile.mkdtemp(prefix="brobygger-incremental-"))
    started = time.perf_counter()
    try:
        section = measure_incremental(
            embedder, root, **({"real": 300, "large": 20_000} if args.quick else {})
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    section.seconds = time.perf_counter() - started
    print_checks(section)
    if args.write:
        command = ".venv/bin/python -m benchmarks.incremental " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        write_section(args.doc, section, machine, command.strip())
        print(f"wrote the incremental section of {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
