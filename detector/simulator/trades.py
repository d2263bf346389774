"""Taker trades of one symbol: sizes, sides and the frames both exchanges print for them (pure)."""

from __future__ import annotations

import uuid
from random import Random
from typing import Any

from detector.models import Exchange
from detector.simulator import wire
from detector.simulator.book import SimBook
from detector.simulator.instruments import SymbolProfile
from detector.simulator.tickers import TickerState

MAX_SIZE_MULTIPLE = 6.0  # trades are capped at this multiple of the median (steady volume)


class TradeTape:
    """Draws trades, executes them against a book and numbers them as each exchange does."""

    def __init__(self, prof: SymbolProfile, rng: Random, ids: Random) -> None:
        self.rng = rng
        self._profile = prof
        self._agg_id = 3_400_000_000 + int(ids.random() * 100_000_000)
        self._trade_id = 7_900_000_000 + int(ids.random() * 100_000_000)

    def trade(
        self,
        exchange: Exchange,
        book: SimBook,
        ticker: TickerState,
        size_factor: float,
        now: int,
        seq: int = 0,
    ) -> dict[str, Any]:
        """Execute one taker order on ``book``; the frame the exchange publishes for it.

        ``seq`` is Bybit's cross sequence for the trade (unused for Binance).
        """
        rng, prof = self.rng, self._profile
        spec = prof.spec(exchange)
        multiple = min(MAX_SIZE_MULTIPLE, rng.lognormvariate(0.0, 0.7))
        lots = spec.lots_for(prof.trade_qty * size_factor * multiple)
        is_buy = rng.random() < 0.5
        tick, filled = book.take(not is_buy, lots)  # a buy lifts the best ask
        price, qty = spec.price_str(tick), spec.qty_str(filled)
        trade_ms = now - int(rng.random() * 3)
        if exchange is Exchange.BINANCE:
            first = self._trade_id + 1
            self._trade_id = first + int(rng.expovariate(1.2))
            self._agg_id += 1
            return wire.binance_agg_trade(
                prof.symbol,
                now,
                self._agg_id,
                price,
                qty,
                first,
                self._trade_id,
                trade_ms,
                buyer_is_maker=not is_buy,
            )
        ticker.on_trade(tick, filled * spec.step)
        trade_id = str(uuid.UUID(int=rng.getrandbits(128), version=5))
        element = wire.bybit_trade(
            prof.symbol,
            trade_ms,
            "Buy" if is_buy else "Sell",
            qty,
            price,
            ticker.tick_direction,
            trade_id,
            seq,
        )
        return wire.bybit_trades(prof.symbol, now, [element])
