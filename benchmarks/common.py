"""Shared pieces of the speed benchmarks: timing statistics, the machine record, question loading,
temporary workspaces and the Markdown tables written into docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PTB_TIMEDELTA", "true")

from bot.evaluation import Question, load_questions
from bot.settings import Settings

REPO = Path(__file__).resolve().parent.parent
KNOWLEDGE = REPO / "knowledge"
QUESTIONS = REPO / "benchmarks" / "data" / "questions.yaml"
TOKEN = "123456:BENCH-token_abcdefghij"


# --- statistics -------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in 0..100."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def rss_bytes() -> int:
    """Resident memory of this process now (VmRSS), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- inputs -----------------------------------------------------------------------------------


def load_bench_questions(limit: int | None = None) -> list[Question]:
    """The evaluation questions (en/sv/da, typos, paraphrases, unanswerable), spread evenly when
    fewer are wanted so every language and kind stays represented."""
    questions = load_questions(QUESTIONS)
    if limit is None or limit >= len(questions):
        return questions
    return [questions[i * len(questions) // limit] for i in range(limit)]


def bench_settings(root: Path, index_dir: Path | None = None, **overrides: Any) -> Settings:
    """Settings over the repository's knowledge and a private index and data directory."""
    values: dict[str, Any] = {
        "knowledge_dir": KNOWLEDGE,
        "index_dir": index_dir or root / "index",
        "data_dir": root / "data",
        "telegram_bot_token": TOKEN,
    }
    values.update(overrides)
    return Settings(**values)


# --- the machine ------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(module: str) -> str:
    try:
        imported = __import__(module)
    except ImportError:
        return "not installed"
    return str(getattr(imported, "__version__", "?"))


def code_version() -> str:
    """The commit benchmarked, and whether product files had uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "bot").splitlines() if line]
    return commit + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else "")


def machine_info() -> dict[str, str]:
    import torch

    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": code_version(),
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "ram": _ram(),
        "python": platform.python_version(),
        "torch": f"{torch.__version__} ({torch.get_num_threads()} threads)",
        "faiss": _version("faiss"),
        "bm25s": _version("bm25s"),
        "sentence-transformers": _version("sentence_transformers"),
        "python-telegram-bot": _version("telegram"),
        "numpy": _version("numpy"),
        "load average at start": f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        "platform": platform.platform(),
        "executable": sys.executable,
    }


# --- results ----------------------------------------------------------------------------------


@dataclass
class Check:
    """One goal: a measured figure against a baseline measured in the same run."""

    name: str
    figure: str
    baseline: str
    value: float  # the ratio (or the absolute figure when the goal is absolute)
    goal: str
    met: bool
    why: str = ""
    value_text: str = ""

    @property
    def verdict(self) -> str:
        return "**met**" if self.met else "**not met**"

    def shown_value(self) -> str:
        return self.value_text or f"{self.value:.2f}×"


@dataclass
class Table:
    header: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
        return "\n".join(lines)


@dataclass
class Section:
    """One measurement: its checks plus free-form Markdown (tables, method, notes)."""

    key: str
    title: str
    checks: list[Check] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, *parts: str) -> None:
        self.body.extend(parts)

    def markdown(self) -> str:
        parts = [f"### {self.title}", ""]
        if self.checks:
            table = Table(
                ["Measure", "Figure", "Baseline (same run)", "Ratio / value", "Goal", "Verdict"]
            )
            for check in self.checks:
                table.rows.append(
                    [
                        check.name,
                        check.figure,
                        check.baseline,
                        check.shown_value(),
                        check.goal,
                        check.verdict,
                    ]
                )
            parts += [table.markdown(), ""]
            for check in self.checks:
                if check.why:
                    parts += [f"*Why ({check.name}):* {check.why}", ""]
        for block in self.body:
            parts += [block, ""]
        parts.append(f"_Section run time: {self.seconds:.0f} s._")
        return "\n".join(parts).rstrip() + "\n"
