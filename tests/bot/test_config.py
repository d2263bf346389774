"""Settings: defaults, parsing of every variable, and a clear error for each bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, find_unknown_settings, load_settings
from bot.errors import SettingsError
from detector.models import Exchange

ALL_NAMES = (
    "SYMBOLS",
    "MIN_PROFIT_PCT",
    "BINANCE_TAKER_FEE_PCT",
    "BYBIT_TAKER_FEE_PCT",
    "STALE_AFTER_S",
    "MIN_NOTIONAL_USD",
    "BINANCE_REST_URL",
    "BINANCE_WS_URL",
    "BYBIT_REST_URL",
    "BYBIT_WS_URL",
    "DATABASE_PATH",
    "ADMIN_USER_IDS",
    "MAX_SUBSCRIPTIONS_PER_USER",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_URL",
    "DISCORD_BOT_TOKEN",
    "DISCORD_API_URL",
    "DISCORD_GATEWAY_URL",
    "LOG_LEVEL",
    "EXCHANGES",
    "OKX_TAKER_FEE_PCT",
    "OKX_REST_URL",
    "OKX_WS_URL",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_issue() -> None:
    settings = load_settings(env_file=None)
    assert settings.symbols == ("ALL",)  # the whole market
    config = settings.detector_config()
    assert config.min_profit_pct == 0.1
    assert config.exchanges == (Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX)
    assert config.taker_fee_pct == {
        Exchange.BINANCE: 0.05,
        Exchange.BYBIT: 0.055,
        Exchange.OKX: 0.05,
    }
    assert config.stale_after_s == 5
    assert config.min_notional_usd == 100
    assert config.fee(Exchange.BYBIT) == pytest.approx(0.00055)


def test_env_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("SYMBOLS= btcusdt, ethusdt ,btcusdt\nMIN_PROFIT_PCT=0.25\nSTALE_AFTER_S=2.5\n")
    monkeypatch.setenv("MIN_PROFIT_PCT", "0.3")  # the environment wins over .env
    settings = load_settings(env_file=str(env))
    assert settings.symbols == ("BTCUSDT", "ETHUSDT")
    assert settings.min_profit_pct == 0.3
    assert settings.stale_after_s == 2.5


def test_env_example_lists_every_setting() -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    names = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert names == {name.upper() for name in Settings.model_fields}
    assert set(ALL_NAMES) <= names


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("SYMBOLS", "", "at least one symbol"),
        ("SYMBOLS", "BTCUSDT,BTC-PERP", "BTC-PERP"),
        ("SYMBOLS", "ALL,BTCUSDT", "ALL stands alone"),
        ("MAX_PRICE_RATIO_PCT", "-1", "greater than or equal to 0"),
        ("MIN_PROFIT_PCT", "lots", "MIN_PROFIT_PCT"),
        ("MIN_PROFIT_PCT", "-1", "greater than or equal to 0"),
        ("BINANCE_TAKER_FEE_PCT", "5", "less than 1"),
        ("BYBIT_TAKER_FEE_PCT", "-0.1", "BYBIT_TAKER_FEE_PCT"),
        ("STALE_AFTER_S", "0", "greater than 0"),
        ("MIN_NOTIONAL_USD", "-5", "MIN_NOTIONAL_USD"),
        ("MIN_NOTIONAL_USD", "inf", "finite number"),
        ("MIN_NOTIONAL_USD", "1e12", "less than or equal to 1000000000"),
        ("MIN_PROFIT_PCT", "nan", "finite number"),
        ("STALE_AFTER_S", "inf", "finite number"),
        ("DATABASE_PATH", " ", "give a file name"),
        ("ADMIN_USER_IDS", "telegram:12,slack:7", "slack:7"),
        ("MAX_SUBSCRIPTIONS_PER_USER", "0", "greater than or equal to 1"),
        ("LOG_LEVEL", "loud", "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        ("EXCHANGES", "binance,kraken", "unknown exchange kraken (known: binance, bybit, okx)"),
        ("EXCHANGES", "okx", "give two or more exchanges"),
        ("EXCHANGES", "bybit,BYBIT", "give two or more exchanges"),
        ("OKX_TAKER_FEE_PCT", "2", "less than 1"),
    ],
)
def test_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert name in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BINANCE_WS_URL", "https://fstream.binance.com"),
        ("BYBIT_WS_URL", "not a url"),
        ("BINANCE_REST_URL", "ftp://fapi.binance.com"),
    ],
)
def test_bad_urls_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings(env_file=None)


def test_urls_reach_the_detector_without_trailing_slashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_REST_URL", "http://127.0.0.1:8790")
    monkeypatch.setenv("BYBIT_WS_URL", "ws://127.0.0.1:8790/v5/public/linear")
    urls = load_settings(env_file=None).feed_urls()
    assert urls.binance_rest == "http://127.0.0.1:8790"
    assert urls.bybit_ws == "ws://127.0.0.1:8790/v5/public/linear"
    assert urls.binance_ws == "wss://fstream.binance.com"


def test_telegram_is_off_by_default_and_the_token_is_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(env_file=None)
    assert settings.telegram_bot_token is None
    assert settings.telegram_base_url() == "https://api.telegram.org/bot"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:SECRET-token_x")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:8081/bot")
    settings = load_settings(env_file=None)
    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value() == "123456:SECRET-token_x"
    assert "SECRET" not in repr(settings) and "SECRET" not in str(settings.model_dump())
    assert settings.telegram_base_url() == "http://127.0.0.1:8081/bot"


def test_a_bad_token_is_named_but_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "SECRET with spaces")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert "TELEGRAM_BOT_TOKEN" in str(info.value)
    assert "SECRET" not in str(info.value)


DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.SECRET_fake-token-for-tests-0123456789"


def test_discord_is_off_by_default_and_the_token_is_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(env_file=None)
    assert settings.discord_bot_token is None
    assert settings.discord_api_base() == "https://discord.com/api/v10"
    assert settings.discord_gateway() == "wss://gateway.discord.gg/"
    monkeypatch.setenv("DISCORD_BOT_TOKEN", f"  {DISCORD_TOKEN} ")
    monkeypatch.setenv("DISCORD_API_URL", "http://127.0.0.1:8082/api/v10/")
    monkeypatch.setenv("DISCORD_GATEWAY_URL", "ws://127.0.0.1:8082/gateway")
    settings = load_settings(env_file=None)
    assert settings.discord_bot_token is not None
    assert settings.discord_bot_token.get_secret_value() == DISCORD_TOKEN
    assert "SECRET" not in repr(settings) and "SECRET" not in str(settings.model_dump())
    assert settings.discord_api_base() == "http://127.0.0.1:8082/api/v10"
    assert settings.discord_gateway() == "ws://127.0.0.1:8082/gateway"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DISCORD_BOT_TOKEN", "SECRET-not-a-discord-token"),
        ("DISCORD_BOT_TOKEN", "123456:SECRET-a-telegram-token"),
        ("DISCORD_API_URL", "not a url"),
        ("DISCORD_GATEWAY_URL", "https://gateway.discord.gg"),
    ],
)
def test_bad_discord_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert name in str(info.value)
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "level"), [("", "WARNING"), ("debug", "DEBUG"), (" Error ", "ERROR")]
)
def test_log_level_is_warning_unless_set(
    monkeypatch: pytest.MonkeyPatch, value: str, level: str
) -> None:
    if value:
        monkeypatch.setenv("LOG_LEVEL", value)
    assert load_settings(env_file=None).log_level == level


def test_unknown_names_in_env_are_found_with_the_closest_setting(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# a comment\nSYMBOLS=BTCUSDT\nMIN_PROFT_PCT=0.2\nexport telegram_bot_tokn=\n"
        "log_level=info\nPYTHONPATH=.\n"
    )
    assert find_unknown_settings(env) == [
        f"{env}: unknown setting MIN_PROFT_PCT ignored (did you mean MIN_PROFIT_PCT?)",
        f"{env}: unknown setting telegram_bot_tokn ignored (did you mean TELEGRAM_BOT_TOKEN?)",
        f"{env}: unknown setting PYTHONPATH ignored (see .env.example for the settings)",
    ]
    assert find_unknown_settings(tmp_path / "absent.env") == []
    example = Path(__file__).resolve().parents[2] / ".env.example"
    assert find_unknown_settings(example) == []


def test_exchanges_are_a_list_of_venues(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGES", " OKX, binance ")
    config = load_settings(env_file=None).detector_config()
    assert config.exchanges == (Exchange.OKX, Exchange.BINANCE)
    assert config.fee(Exchange.OKX) == pytest.approx(0.0005)


def test_symbols_all_with_exclusions_reach_the_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBOLS", " all ")
    monkeypatch.setenv("SYMBOLS_EXCLUDE", "shib1000usdt, BTCUSDT,")
    monkeypatch.setenv("MAX_PRICE_RATIO_PCT", "25")
    config = load_settings(env_file=None).detector_config()
    assert config.symbols == ("ALL",)
    assert config.symbols_exclude == ("SHIB1000USDT", "BTCUSDT")
    assert config.max_price_ratio_pct == 25.0
