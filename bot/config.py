"""Settings from the environment and ``.env`` (pydantic-settings); every name is in .env.example."""

from __future__ import annotations

import difflib
import logging
import re
import sys
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import Field, HttpUrl, SecretStr, ValidationError, WebsocketUrl, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import SettingsError
from detector.config import DetectorConfig, FeedUrls, WsCompression
from detector.models import Exchange

_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}USDT$")
_SECRETS = frozenset(
    {"TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN"}
)  # never echoed in an error message
# Three base64url parts: the bot's id, a timestamp and an HMAC (Developer Portal → Bot → Token).
_DISCORD_TOKEN = re.compile(r"[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{10,}")
_ADMIN_ID = re.compile(r"^(?:(telegram|discord):)?(-?[0-9]{1,20})$")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LOG_LEVELS: tuple[LogLevel, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OWN_LOGGERS = ("bot", "detector")
LIBRARY_LOGGERS = (
    "websockets",
    "httpx",
    "httpcore",
    "telegram",
    "discord",
    "asyncio",
    "aiohttp",
    "matplotlib",
)
"""The libraries whose logs are noise unless asked for (``-vvv``): set explicitly, because a
library (or an earlier configuration in the same process) may have set a level of its own."""


class Settings(BaseSettings):
    """arbwatch settings. Environment variables win over ``.env``; names are case-insensitive."""

    # allow_inf_nan=False: "inf" or "nan" in a numeric setting is a typo, never a limit.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", allow_inf_nan=False
    )

    symbols: Annotated[tuple[str, ...], NoDecode] = ("ALL",)
    symbols_exclude: Annotated[tuple[str, ...], NoDecode] = ()  # with SYMBOLS=ALL
    symbols_refresh_s: float = Field(3600.0, ge=10, le=7 * 86400)  # with SYMBOLS=ALL
    max_price_ratio_pct: float = Field(10.0, ge=0, le=1000)
    # The venues watched: every ordered pair of them is evaluated for arbitrage.
    exchanges: Annotated[tuple[Exchange, ...], NoDecode] = tuple(Exchange)
    min_profit_pct: float = Field(0.1, ge=0, le=100)
    binance_taker_fee_pct: float = Field(0.05, ge=0, lt=1)
    bybit_taker_fee_pct: float = Field(0.055, ge=0, lt=1)
    okx_taker_fee_pct: float = Field(0.05, ge=0, lt=1)
    stale_after_s: float = Field(5.0, gt=0, le=3600)
    min_notional_usd: float = Field(100.0, ge=0, le=1e9)
    binance_rest_url: HttpUrl = HttpUrl("https://fapi.binance.com")
    binance_ws_url: WebsocketUrl = WebsocketUrl("wss://fstream.binance.com")
    bybit_rest_url: HttpUrl = HttpUrl("https://api.bybit.com")
    bybit_ws_url: WebsocketUrl = WebsocketUrl("wss://stream.bybit.com/v5/public/linear")
    okx_rest_url: HttpUrl = HttpUrl("https://www.okx.com")
    okx_ws_url: WebsocketUrl = WebsocketUrl("wss://ws.okx.com:8443/ws/v5/public")
    # permessage-deflate offered to the exchanges' WebSockets: it costs CPU on every message.
    ws_compression: WsCompression = "none"
    database_path: Path = Path("arbwatch.db")
    # "platform:id" entries, or bare ids that match on every platform; normalised to lower case.
    admin_user_ids: Annotated[tuple[str, ...], NoDecode] = ()
    max_subscriptions_per_user: int = Field(50, ge=1, le=1000)
    # A secret: SecretStr keeps it out of repr() and logs; None runs the console only.
    telegram_bot_token: SecretStr | None = None
    telegram_api_url: HttpUrl = HttpUrl("https://api.telegram.org/bot")
    discord_bot_token: SecretStr | None = None
    discord_api_url: HttpUrl = HttpUrl("https://discord.com/api/v10")
    discord_gateway_url: WebsocketUrl = WebsocketUrl("wss://gateway.discord.gg")
    # arbwatch's own log level on stderr; -v, -q and --log-level override it.
    log_level: LogLevel = "WARNING"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("ws_compression", mode="before")
    @classmethod
    def _lower_compression(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("telegram_bot_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and not re.fullmatch(r"[0-9]+:[A-Za-z0-9_-]+", value.strip()):
            # Never echo the value: it may be a real token with a typo.
            raise ValueError("not a bot token (expected digits:letters, from @BotFather)")
        return value.strip() if isinstance(value, str) else value

    @field_validator("discord_bot_token", mode="before")
    @classmethod
    def _blank_discord_token_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and not _DISCORD_TOKEN.fullmatch(value.strip()):
            raise ValueError(
                "not a bot token (expected three dot-separated parts, from the Developer Portal)"
            )
        return value.strip() if isinstance(value, str) else value

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip().upper() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            if not value:
                raise ValueError("give at least one symbol, e.g. BTCUSDT,ETHUSDT")
            if "ALL" in value and len(value) > 1:
                raise ValueError("ALL stands alone (leave symbols out with SYMBOLS_EXCLUDE)")
            bad = [s for s in value if not isinstance(s, str) or not _SYMBOL.match(s)]
            if bad and list(value) != ["ALL"]:
                raise ValueError(
                    f"not a USDT perpetual symbol: {', '.join(map(str, bad))} (e.g. BTCUSDT)"
                )
            return tuple(dict.fromkeys(value))
        return value

    @field_validator("symbols_exclude", mode="before")
    @classmethod
    def _split_excluded(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().upper() for part in value.split(",") if part.strip())
        return value

    @field_validator("exchanges", mode="before")
    @classmethod
    def _split_exchanges(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip().lower() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            known = [e.value for e in Exchange]
            bad = [str(v) for v in value if str(v).lower() not in known]
            if bad:
                raise ValueError(f"unknown exchange {', '.join(bad)} (known: {', '.join(known)})")
            venues = tuple(dict.fromkeys(Exchange(str(v).lower()) for v in value))
            if len(venues) < 2:
                raise ValueError("give two or more exchanges, e.g. binance,bybit,okx")
            return venues
        return value

    @field_validator("database_path", mode="before")
    @classmethod
    def _nonempty_path(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("give a file name, e.g. arbwatch.db")
        return value

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip().lower() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            bad = [a for a in value if not isinstance(a, str) or not _ADMIN_ID.match(a)]
            if bad:
                raise ValueError(
                    f"not a user id: {', '.join(map(str, bad))} "
                    "(use telegram:123456, discord:123456 or a bare numeric id)"
                )
            return tuple(dict.fromkeys(value))
        return value

    def feed_urls(self) -> FeedUrls:
        """The exchanges' URLs, without the trailing slash pydantic adds to bare hosts."""
        return FeedUrls(
            binance_rest=str(self.binance_rest_url).rstrip("/"),
            binance_ws=str(self.binance_ws_url).rstrip("/"),
            bybit_rest=str(self.bybit_rest_url).rstrip("/"),
            bybit_ws=str(self.bybit_ws_url).rstrip("/"),
            okx_rest=str(self.okx_rest_url).rstrip("/"),
            okx_ws=str(self.okx_ws_url).rstrip("/"),
        )

    def telegram_base_url(self) -> str:
        """TELEGRAM_API_URL as python-telegram-bot wants it (the token is appended)."""
        return str(self.telegram_api_url)

    def discord_api_base(self) -> str:
        """DISCORD_API_URL without a trailing slash (discord.py appends ``/users/@me`` etc.)."""
        return str(self.discord_api_url).rstrip("/")

    def discord_gateway(self) -> str:
        return str(self.discord_gateway_url)

    def detector_config(self) -> DetectorConfig:
        return DetectorConfig(
            symbols=self.symbols,
            exchanges=self.exchanges,
            min_profit_pct=self.min_profit_pct,
            taker_fee_pct={
                Exchange.BINANCE: self.binance_taker_fee_pct,
                Exchange.BYBIT: self.bybit_taker_fee_pct,
                Exchange.OKX: self.okx_taker_fee_pct,
            },
            stale_after_s=self.stale_after_s,
            max_price_ratio_pct=self.max_price_ratio_pct,
            symbols_exclude=self.symbols_exclude,
            symbols_refresh_s=self.symbols_refresh_s,
            min_notional_usd=self.min_notional_usd,
            ws_compression=self.ws_compression,
        )


def load_settings(env_file: str | None = ".env") -> Settings:
    """Read the settings; raises :class:`SettingsError` naming every invalid one."""
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"]).upper() or "SETTINGS"
            got = "(value hidden)" if name in _SECRETS else f"(got {err.get('input')!r})"
            problems.append(f"{name}: {err['msg']} {got}")
        raise SettingsError(problems) from exc


def find_unknown_settings(env_file: str | Path) -> list[str]:
    """One line per name in ``env_file`` that is not a setting, with the closest setting's name.

    Such names are ignored (a typo would otherwise leave its setting at the default in silence).
    The environment is not checked: it holds every other program's variables too.
    """
    path = Path(env_file)
    if not path.is_file():
        return []
    known = [name.upper() for name in Settings.model_fields]
    problems = []
    for key in dotenv_values(path, encoding="utf-8"):
        name = key.strip().upper()
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}?" if close else "see .env.example for the settings"
        problems.append(f"{path}: unknown setting {key} ignored ({hint})")
    return problems


def configure_logging(level: str, *, verbose: int = 0, quiet: bool = False) -> None:
    """Log to stderr with timestamps: arbwatch's own loggers at ``level`` (``-q``: ERROR, ``-v``:
    INFO, ``-vv``: DEBUG), every library (websockets, httpx, telegram, discord, asyncio …) at
    WARNING, or at DEBUG too with ``-vvv``."""
    own = logging.ERROR if quiet else logging.getLevelName(level)
    if verbose:
        own = logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "arbwatch"]:
        root.removeHandler(old)  # configured again in the same process (tests)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("arbwatch")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    libraries = logging.DEBUG if verbose >= 3 else max(own, logging.WARNING)
    root.setLevel(libraries)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(libraries)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(own)
