"""Detector parameters as a plain frozen dataclass; ``bot.config`` fills it from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from detector.errors import ConfigError
from detector.models import Exchange


@dataclass(frozen=True, slots=True)
class SignalRules:
    """Windows, thresholds and dedup rules of the five signal detectors (see docs/signals.md)."""

    # ARBITRAGE: strength by net profit as a multiple of min_profit_pct.
    arb_moderate_multiple: float = 2.0
    arb_strong_multiple: float = 4.0
    arb_regrowth_pct: float = 0.05  # re-signal when net profit grew by at least this many points
    arb_ttl_s: float = 30.0
    # A re-opened opportunity (same symbol and direction) within this many seconds of the last
    # signal about that pair is a continuation: it signals only on upgrade or regrowth. 0 disables.
    arb_reopen_quiet_s: float = 30.0
    # SPREAD_ANOMALY: bid-ask spread (bps) of one book, sampled once a second.
    spread_sample_s: float = 1.0
    spread_window: int = 120  # samples in the rolling window
    spread_warmup: int = 60  # samples before the detector speaks
    spread_z: tuple[float, float, float] = (4.0, 6.0, 10.0)  # weak, moderate, strong
    spread_min_bps: float = 2.0  # ignore anomalies of spreads narrower than this
    spread_ttl_s: float = 30.0
    # VOLUME_SPIKE: traded quote volume per bucket against the mean of the previous buckets.
    volume_bucket_s: float = 5.0
    volume_history: int = 24  # buckets in the rolling mean (2 minutes)
    volume_warmup: int = 12  # complete buckets before the detector speaks
    volume_ratio: tuple[float, float, float] = (4.0, 8.0, 15.0)
    # A bucket needs both minimums to spike: a ratio over a thin bucket (one big trade, a quiet
    # symbol) is noise, not a volume event.
    volume_min_trades: int = 5
    volume_min_notional_usd: float = 10_000.0
    volume_ttl_s: float = 30.0
    # FUNDING_RATE_DIVERGENCE: |binance - bybit| funding, normalised to 8 h, in percent.
    funding_diff_pct: tuple[float, float, float] = (0.03, 0.06, 0.12)
    funding_ttl_s: float = 600.0
    # MOMENTUM_BREAKOUT: mid price against the high/low of the previous window.
    momentum_bar_s: float = 1.0
    momentum_window: int = 60  # bars in the prior window
    momentum_break_pct: tuple[float, float, float] = (0.15, 0.4, 0.8)  # beyond the prior high/low
    # Cooldown: a breakout (same symbol and direction) back inside its reference for less than
    # this many seconds resumes its episode: it signals again only on upgrade. 0 disables.
    momentum_reopen_quiet_s: float = 30.0
    momentum_ttl_s: float = 60.0
    # Confidence (0..1): product of factors, each documented in docs/signals.md.
    confidence_depth_notional_usd: float = 10_000.0  # top-of-book notional for full depth factor
    confidence_skew_ms: float = 2_000.0  # clock skew at which the skew factor reaches 0.2

    def __post_init__(self) -> None:
        for name in ("spread_z", "volume_ratio", "funding_diff_pct", "momentum_break_pct"):
            tiers: tuple[float, float, float] = getattr(self, name)
            if not 0 < tiers[0] <= tiers[1] <= tiers[2]:
                raise ConfigError(f"{name} must be positive and ascending, got {tiers}")
        if not 0 < self.arb_moderate_multiple <= self.arb_strong_multiple:
            raise ConfigError("arb multiples must satisfy 0 < moderate <= strong")
        for name, warmup, window in (
            ("spread", self.spread_warmup, self.spread_window),
            ("volume", self.volume_warmup, self.volume_history),
        ):
            if not 1 <= warmup <= window:
                raise ConfigError(f"{name}: need 1 <= warmup <= window, got {warmup}, {window}")
        for name in ("arb_reopen_quiet_s", "momentum_reopen_quiet_s", "volume_min_notional_usd"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.volume_min_trades < 1:
            raise ConfigError(f"volume_min_trades must be >= 1, got {self.volume_min_trades}")
        if self.momentum_window < 1:
            raise ConfigError(f"momentum_window must be >= 1, got {self.momentum_window}")
        for name in (
            "arb_ttl_s",
            "spread_sample_s",
            "spread_ttl_s",
            "volume_bucket_s",
            "volume_ttl_s",
            "funding_ttl_s",
            "momentum_bar_s",
            "momentum_ttl_s",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")


WsCompression = Literal["none", "deflate"]
WS_COMPRESSIONS: tuple[str, ...] = get_args(WsCompression)
"""What the WebSocket clients offer the exchanges: nothing, or permessage-deflate (RFC 7692)."""


@dataclass(frozen=True, slots=True)
class FeedUrls:
    """Where the exchanges are; the defaults are the real endpoints."""

    binance_rest: str = "https://fapi.binance.com"
    binance_ws: str = "wss://fstream.binance.com"
    bybit_rest: str = "https://api.bybit.com"
    bybit_ws: str = "wss://stream.bybit.com/v5/public/linear"
    okx_rest: str = "https://www.okx.com"
    okx_ws: str = "wss://ws.okx.com:8443/ws/v5/public"


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Everything the pure pipeline needs to know; no I/O, no environment."""

    # ("ALL",): every coin tradable on two or more watched venues, discovered at start.
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    symbols_exclude: tuple[str, ...] = ()  # with ALL: names (any venue's) left out
    symbols_refresh_s: float = 3600.0  # with ALL: how often the instrument lists are read again
    # The venues watched; every ordered pair of them is evaluated for arbitrage.
    exchanges: tuple[Exchange, ...] = (Exchange.BINANCE, Exchange.BYBIT)
    min_profit_pct: float = 0.1
    taker_fee_pct: dict[Exchange, float] = field(
        default_factory=lambda: {Exchange.BINANCE: 0.05, Exchange.BYBIT: 0.055, Exchange.OKX: 0.05}
    )
    stale_after_s: float = 5.0
    min_notional_usd: float = 100.0
    bybit_book_depth: int = 50
    binance_funding_interval_hours: float = 8.0  # until /fapi/v1/fundingInfo says otherwise
    # Identity check: a book whose mid differs from every other venue's book of its symbol by
    # more than this (in %, on first sync) is another coin behind the same name: quarantined,
    # never signalled. 0 turns the check off.
    max_price_ratio_pct: float = 10.0
    rules: SignalRules = field(default_factory=SignalRules)
    # For the feeds, not the pipeline: decompressing costs CPU on every message, and on
    # loopback or a fast link more than the bytes it saves.
    ws_compression: WsCompression = "none"

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ConfigError("at least one symbol is needed")
        if len(set(self.exchanges)) != len(self.exchanges) or len(self.exchanges) < 2:
            names = ", ".join(e.value for e in self.exchanges) or "none"
            raise ConfigError(f"watch two or more different exchanges, not {names}")
        for exchange in self.exchanges:
            if exchange not in self.taker_fee_pct:
                raise ConfigError(f"no taker fee for {exchange}")
        if self.min_profit_pct < 0:
            raise ConfigError(f"min_profit_pct must be >= 0, got {self.min_profit_pct}")
        for exchange, fee in self.taker_fee_pct.items():
            if not 0 <= fee < 1:
                raise ConfigError(f"taker fee of {exchange} must be in [0, 1) %, got {fee}")
        if self.stale_after_s <= 0:
            raise ConfigError(f"stale_after_s must be > 0, got {self.stale_after_s}")
        if self.min_notional_usd < 0:
            raise ConfigError(f"min_notional_usd must be >= 0, got {self.min_notional_usd}")
        if self.symbols_refresh_s <= 0:
            raise ConfigError(f"symbols_refresh_s must be > 0, got {self.symbols_refresh_s}")
        if self.max_price_ratio_pct < 0:
            raise ConfigError(f"max_price_ratio_pct must be >= 0, got {self.max_price_ratio_pct}")
        if self.ws_compression not in WS_COMPRESSIONS:
            choices = ", ".join(WS_COMPRESSIONS)
            raise ConfigError(
                f"ws_compression must be one of {choices}, got {self.ws_compression!r}"
            )

    @property
    def stale_after_ms(self) -> int:
        return int(self.stale_after_s * 1000)

    def fee(self, exchange: Exchange) -> float:
        """Taker fee of ``exchange`` as a fraction."""
        return self.taker_fee_pct[exchange] / 100.0
