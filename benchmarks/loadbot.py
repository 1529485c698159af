"""The bot of the end-to-end load benchmark (benchmarks/load.py), in a process of its own: built
and run exactly as `brobygger run` does (settings from the environment, bot.app's factory, long
polling), plus a 2 ms ticker that records event-loop lag, written to BENCH_LAG_FILE at shutdown.
BENCH_RATE_LIMITER=0 builds it without the rate limiter (a diagnostic: what would the bot do
without Telegram's limit).

    python -m benchmarks.loadbot   # stopped with SIGINT or SIGTERM
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from telegram import Update

from bot.app import build_application
from bot.cli import load_settings
from bot.logging_setup import setup_logging


async def _ticker(lags: list[tuple[float, float]], interval: float = 0.002) -> None:
    """(wall clock, lag) of each short sleep: how late the event loop woke it."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(interval)
        lag = max(0.0, time.perf_counter() - started - interval)
        lags.append((time.time(), lag))


def _write(path: str, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


def main() -> int:
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    settings = load_settings()
    setup_logging(settings.log_level, (settings.telegram_bot_token, settings.webhook_secret))
    app = build_application(settings, rate_limiter=os.environ.get("BENCH_RATE_LIMITER") != "0")
    lags: list[tuple[float, float]] = []
    tasks: list[asyncio.Task[None]] = []
    init, shutdown = app.post_init, app.post_shutdown

    async def post_init(application: Any) -> None:
        if init is not None:
            await init(application)
        tasks.append(asyncio.get_running_loop().create_task(_ticker(lags)))
        await asyncio.to_thread(_write, os.environ["BENCH_READY_FILE"], "ready")

    async def post_shutdown(application: Any) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.to_thread(_write, os.environ["BENCH_LAG_FILE"], json.dumps(lags))
        if shutdown is not None:
            await shutdown(application)

    app.post_init = post_init
    app.post_shutdown = post_shutdown
    app.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
