"""Files the bot sends land on disk in the console (`brobygger chat`) with their bytes (they
travel as multipart parts, not as request parameters): here the /stats chart."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace

import pytest

from bot.console import console_session
from bot.services.search import SearchService
from tests.conftest import ADMIN_ID

pytestmark = pytest.mark.slow


async def test_the_stats_chart_is_saved_in_the_console(search_service: SearchService) -> None:
    settings = replace(search_service.settings, admin_ids=frozenset({ADMIN_ID}))
    out = io.StringIO()
    try:
        await asyncio.wait_for(
            console_session(settings, search_service, ["/stats"], out, user_id=ADMIN_ID),
            timeout=120,
        )
    finally:
        await search_service.close()
    saved = settings.data_dir / "downloads" / "stats.png"
    assert f"→ saved to {saved}" in out.getvalue()
    assert saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
