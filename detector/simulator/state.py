"""Per-symbol state of the market model: the fair price walk, every venue's book and its
targets, update-id counters, tickers and trade tape (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from detector.models import Exchange
from detector.simulator import wire, wire_okx
from detector.simulator.book import SimBook
from detector.simulator.effects import Effects
from detector.simulator.instruments import SymbolProfile
from detector.simulator.tickers import TickerState
from detector.simulator.trades import TradeTape

BINANCE, BYBIT, OKX = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX
TAKER_FEE_PCT: dict[Exchange, float] = {BINANCE: 0.05, BYBIT: 0.055, OKX: 0.05}
"""VIP0 taker fees in percent: Binance USDⓈ-M, Bybit linear, OKX USDT swaps."""
FEES_PCT = TAKER_FEE_PCT[BINANCE] + TAKER_FEE_PCT[BYBIT]
"""Taker fees of a Binance-Bybit crossing's two legs, in percent."""


@dataclass(frozen=True, slots=True)
class FeedRates:
    """How often the exchanges publish, and how busy the market is."""

    binance_depth_ms: int = 100  # @depth@100ms
    bybit_book_ms: tuple[int, int] = (20, 100)  # orderbook.50 pushes, uniform in this range
    bybit_ticker_ms: tuple[int, int] = (100, 500)
    binance_mark_ms: int = 3000  # @markPrice (on whole seconds)
    binance_trades_per_s: float = 3.0
    bybit_trades_per_s: float = 2.5
    binance_churn: float = 6.0  # mean level changes per depth event, besides the top
    bybit_churn: float = 2.0
    binance_depth: int = 200  # levels a side of the simulated Binance book
    bybit_depth: int = wire.BYBIT_BOOK_DEPTH
    okx_book_ms: tuple[int, int] = (95, 110)  # ``books`` pushes about every 100 ms
    okx_ticker_ms: tuple[int, int] = (100, 400)  # ``tickers``: at most every 100 ms, on change
    okx_funding_ms: tuple[int, int] = (30_000, 90_000)  # ``funding-rate``: every 30 to 90 s
    okx_trades_per_s: float = 2.5
    okx_churn: float = 3.0
    okx_depth: int = wire_okx.OKX_BOOK_DEPTH
    okx_keepalive_share: float = 0.02  # pushes with an unchanged book: seqId == prevSeqId
    okx_checksums: bool = True  # False: checksum 0 on every frame, as OKX sends since 2026-06


class SymbolState:
    """Per-symbol state: the fair price walk, every venue's book, update ids, tickers, trades.

    Each venue draws from random streams of its own, so adding a venue changes nothing the
    others publish.
    """

    def __init__(
        self,
        prof: SymbolProfile,
        seed: int,
        start_ms: int,
        rates: FeedRates,
        effects: Effects,
        venues: Sequence[Exchange] = (BINANCE, BYBIT),
    ) -> None:
        def rng(part: str) -> Random:
            return Random(f"{seed}/{prof.symbol}/{part}")

        self.profile = prof
        self.effects = effects
        self.symbol = prof.symbol
        self.walk_rng = rng("walk")
        self.walk = prof.start_price * (1.0 + self.walk_rng.gauss(0.0, 0.003))
        self.walk_ms = start_ms
        self.step_sigma = prof.vol_per_sqrt_s * math.sqrt(0.1)  # one step per 100 ms
        self.rng = {BINANCE: rng("binance"), BYBIT: rng("bybit")}
        self.ids = rng("ids")
        self.quiet = rng("activity") if prof.activity < 1.0 else None
        self.books = {
            BINANCE: SimBook(
                rates.binance_depth,
                prof.level_qty / prof.binance.step,
                self.rng[BINANCE],
                net_only=False,
            ),
            BYBIT: SimBook(
                rates.bybit_depth, prof.level_qty / prof.bybit.step, self.rng[BYBIT], net_only=True
            ),
        }
        self.offset = {BINANCE: 0.0, BYBIT: 0.0}  # fraction of the fair price, mean-reverting
        self.spread = {BINANCE: 1, BYBIT: 1}  # ticks, sticky
        if OKX in venues:
            self.rng[OKX] = rng("okx")
            lots = prof.level_qty / prof.okx.base_step
            self.books[OKX] = SimBook(rates.okx_depth, lots, self.rng[OKX], net_only=True)
            self.offset[OKX], self.spread[OKX] = 0.0, 1
        # Binance futures ids: U..u of this symbol's events, drawn from one exchange-wide counter.
        self.bn_last_u = 0
        self.bn_next_first: int | None = None  # U of the next event, once a snapshot fixed it
        self.bn_min_u = 0
        self.bn_top: tuple[int, int, int, int] | None = None
        self.by_u = 40_000_000 + int(self.ids.random() * 20_000_000)
        self.seq_base = 700_000_000_000 + int(self.ids.random() * 100_000_000_000)
        self.seq = self.seq_base
        self.ticker = TickerState(prof, rng("ticker"), start_ms)
        self.ticker_sent: dict[str, Any] = {}
        self.tape = TradeTape(prof, rng("trades"), self.ids)

    def active(self) -> bool:
        """Whether this tick of a book feed has news (a quieter coin skips some: its book
        changes at the next one); always for a profile of activity 1, with no draw."""
        return self.quiet is None or self.quiet.random() < self.profile.activity

    def fair(self, now: int) -> float:
        """The fair price at ``now``: a random walk in 100 ms steps times the scripted moves."""
        while self.walk_ms + 100 <= now:
            self.walk *= 1.0 + self.walk_rng.gauss(0.0, self.step_sigma)
            self.walk_ms += 100
        return self.walk * self.effects.price_factor(self.symbol, now)

    def targets(self, exchange: Exchange, now: int) -> tuple[int, int, int, int]:
        """(best bid tick, best ask tick, min lots at best bid, min lots at best ask)."""
        spec = self.profile.spec(exchange)
        tick, rng, fair = spec.tick, self.rng[exchange], self.fair(now)
        if rng.random() < 0.08:
            self.spread[exchange] = 1 if rng.random() < 0.85 else 2
        spread = self.spread[exchange]
        bps = self.effects.spread_bps(exchange, self.symbol, now)
        if bps is not None:
            spread = max(spread, Effects.ticks_for_bps(bps, fair, tick))
        self.offset[exchange] = self.offset[exchange] * 0.98 + rng.gauss(0.0, 4e-6)
        arb = self.effects.arbitrage(self.symbol, now)
        if arb is not None and exchange in arb.venues:
            # Each side moves half the gap: sell-side bid >= fair*(1+h), buy-side ask <= fair*(1-h).
            buy, sell = arb.venues
            half = (arb.net_pct + (TAKER_FEE_PCT[buy] + TAKER_FEE_PCT[sell])) / 200.0
            lots = spec.lots_for(arb.depth_usd / fair)
            if exchange is arb.sell_on:
                bid = math.ceil(fair * (1.0 + half) / tick)
                return bid, bid + spread, lots, 0
            ask = math.floor(fair * (1.0 - half) / tick)
            return ask - spread, ask, 0, lots
        bid = math.floor(fair * (1.0 + self.offset[exchange]) / tick - spread / 2.0 + 0.5)
        return bid, bid + spread, 0, 0

    def evolve(self, exchange: Exchange, now: int, churn: float) -> SimBook:
        """Move ``exchange``'s book to its targets with about ``churn`` other level changes."""
        bid, ask, min_bid, min_ask = self.targets(exchange, now)
        book = self.books[exchange]
        changes = 1 + int(self.rng[exchange].random() * 2.0 * churn)
        book.evolve(bid, ask, changes, min_bid_lots=min_bid, min_ask_lots=min_ask)
        return book
