"""Derivatives state of one symbol: last trades, 24 h statistics, open interest, mark, index and
funding, as Bybit's ``tickers`` and Binance's ``markPriceUpdate`` report them (pure)."""

from __future__ import annotations

from random import Random
from typing import Any

from detector.models import Exchange
from detector.simulator.book import LevelTicks
from detector.simulator.instruments import (
    InstrumentSpec,
    SymbolProfile,
    format_decimal,
    format_trimmed,
)

BASE_FUNDING_RATE = 0.0001  # the common 0.01 % per 8 h
HOUR_MS = 3_600_000
VENUES = (Exchange.BINANCE, Exchange.BYBIT)
"""The venues this state serves (OKX keeps its own, :mod:`detector.simulator.okx_state`): its
random draws per venue must not change when another venue is simulated."""


def next_funding_ms(now: int, interval_hours: int) -> int:
    """The next funding time: funding happens on whole multiples of the interval (UTC)."""
    period = interval_hours * HOUR_MS
    return (now // period + 1) * period


class TickerState:
    """Everything of a symbol's tickers that is not the order book."""

    def __init__(self, profile: SymbolProfile, rng: Random, start_ms: int) -> None:
        self._rng = rng
        self._symbol = profile.symbol
        self._spec: InstrumentSpec = profile.bybit
        tick = self._spec.tick
        price = profile.start_price
        self.last_tick = round(price / tick)
        self.tick_direction = "ZeroPlusTick"
        self.prev_24h_tick = round(price * 1.0051 / tick)
        self.prev_1h_tick = round(price * 1.0004 / tick)
        self.high_tick = round(price * 1.0079 / tick)
        self.low_tick = round(price * 0.9878 / tick)
        self.volume = profile.volume_24h
        self.turnover = profile.volume_24h * price
        self.open_interest = profile.open_interest
        self.index: dict[Exchange, float] = {e: price for e in VENUES}
        self.mark: dict[Exchange, float] = {e: price for e in VENUES}
        self.funding: dict[Exchange, float] = {e: BASE_FUNDING_RATE for e in VENUES}
        self._index_ms = start_ms - 1000
        self._oi_ms = start_ms
        self._funding_ms = start_ms

    def on_trade(self, tick: int, qty: float) -> None:
        """Record a Bybit trade (price in ticks, size in base units)."""
        if tick > self.last_tick:
            self.tick_direction = "PlusTick"
        elif tick < self.last_tick:
            self.tick_direction = "MinusTick"
        elif self.tick_direction in ("PlusTick", "ZeroPlusTick"):
            self.tick_direction = "ZeroPlusTick"
        else:
            self.tick_direction = "ZeroMinusTick"
        self.last_tick = tick
        self.high_tick = max(self.high_tick, tick)
        self.low_tick = min(self.low_tick, tick)
        self.volume += qty
        self.turnover += qty * tick * self._spec.tick

    def update(self, fair: float, now: int) -> None:
        """Refresh index and mark (once a second), open interest and the market's own funding."""
        rng = self._rng
        if now - self._index_ms >= 1000:
            self._index_ms = now - now % 1000
            for exchange in VENUES:
                index = fair * (1.0 + rng.gauss(0.0, 1.5e-5))
                self.index[exchange] = index
                self.mark[exchange] = index * (1.0 + rng.gauss(0.0, 1e-5))
        if now - self._oi_ms >= 5000:
            self._oi_ms = now
            self.open_interest *= 1.0 + rng.gauss(0.0, 2e-5)
        if now - self._funding_ms >= 60_000:
            # Funding estimates drift by a few millionths a minute: far below the 0.03 % tier.
            self._funding_ms = now
            for exchange in VENUES:
                self.funding[exchange] = round(BASE_FUNDING_RATE + rng.gauss(0.0, 3e-6), 7)

    def bybit_fields(
        self, bid: LevelTicks, ask: LevelTicks, funding_rate: float, interval: int, now: int
    ) -> dict[str, Any]:
        """A full ``tickers`` data object (strings, as Bybit sends them)."""
        spec = self._spec
        price, qty = spec.price_str, spec.qty_str
        tick = spec.tick
        mark_tick = round(self.mark[Exchange.BYBIT] / tick)
        mark = mark_tick * tick
        oi = self.open_interest
        single = oi / 2.0
        unit = spec.unit  # coins in the venue's unit: sizes are divided by it, prices times it
        return {
            "symbol": self._symbol,
            "tickDirection": self.tick_direction,
            "price24hPcnt": format_trimmed(self.last_tick / self.prev_24h_tick - 1.0, 6),
            "lastPrice": price(self.last_tick),
            "prevPrice24h": price(self.prev_24h_tick),
            "highPrice24h": price(self.high_tick),
            "lowPrice24h": price(self.low_tick),
            "prevPrice1h": price(self.prev_1h_tick),
            "markPrice": price(mark_tick),
            "indexPrice": format_decimal(self.index[Exchange.BYBIT] * unit, spec.wire_price_dp),
            "openInterest": format_decimal(oi / unit, 3),
            "openInterestValue": format_decimal(oi * mark, 2),
            "turnover24h": format_decimal(self.turnover, 4),
            "volume24h": format_decimal(self.volume / unit, 4),
            "fundingIntervalHour": str(interval),
            "fundingCap": "0.005",
            "singleOpenInterest": format_decimal(single / unit, 3),
            "singleOpenInterestValue": format_decimal(single * mark, 2),
            "nextFundingTime": str(next_funding_ms(now, interval)),
            "fundingRate": format_trimmed(funding_rate, 7),
            "bid1Price": price(bid[0]),
            "bid1Size": qty(bid[1]),
            "ask1Price": price(ask[0]),
            "ask1Size": qty(ask[1]),
            "preOpenPrice": "",
            "preQty": "",
            "curPreListingPhase": "",
        }

    def binance_mark(self, spec: InstrumentSpec) -> tuple[str, str, str]:
        """(mark ``p``, index ``i``, estimated settle ``P``) with Binance's 8 decimals, per the
        venue's unit."""
        tick, unit = spec.tick, spec.unit
        mark = round(self.mark[Exchange.BINANCE] / tick) * tick
        index = self.index[Exchange.BINANCE]
        settle = index * (1.0 + (mark / index - 1.0) * 0.5)
        return (
            format_decimal(mark * unit, 8),
            format_decimal(index * unit, 8),
            format_decimal(settle * unit, 8),
        )
