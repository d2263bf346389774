"""OKX's side of one symbol beyond its book: ``seqId`` counters, ticker statistics, trades and
funding, with random streams of their own (pure).

Sizes are integer lots of 0.01 contract; a contract is ``ctVal`` base units, so base quantity
= ``sz * ctVal`` (``ctMult`` is 1 for USDT swaps).
"""

from __future__ import annotations

from random import Random
from typing import Any

from detector.simulator import wire_okx
from detector.simulator.book import LevelTicks, SimBook
from detector.simulator.instruments import SymbolProfile, format_trimmed
from detector.simulator.tickers import BASE_FUNDING_RATE, HOUR_MS, next_funding_ms
from detector.simulator.trades import MAX_SIZE_MULTIPLE

Json = dict[str, Any]


class OkxState:
    """One symbol on OKX: the last published ``seqId``, 24 h statistics, trade ids, funding."""

    def __init__(self, prof: SymbolProfile, seed: int, start_ms: int) -> None:
        def rng(part: str) -> Random:
            return Random(f"{seed}/{prof.symbol}/okx-{part}")

        self.profile = prof
        self.spec = prof.okx
        self.inst_id = prof.inst_id
        self.ids = rng("ids")  # schedule jitter and id steps
        self.trade_rng = rng("trades")
        self.funding_rng = rng("funding")
        self.seq_id = 330_000_000_000 + int(self.ids.random() * 20_000_000_000)  # last published
        self.trade_id = 1_300_000_000 + int(self.ids.random() * 100_000_000)
        self.trade_seq = 9_000_000_000 + int(self.ids.random() * 1_000_000_000)
        tick, price = self.spec.tick, prof.start_price
        self.last_tick, self.last_lots = round(price / tick), 1
        self.open_tick = round(price * 1.0043 / tick)
        self.high_tick = round(price * 1.0071 / tick)
        self.low_tick = round(price * 0.9861 / tick)
        self.sod_utc0_tick = round(price * 1.0012 / tick)
        self.sod_utc8_tick = round(price * 0.9989 / tick)
        self.volume_lots = round(prof.volume_24h * 1.2 / self.spec.base_step)
        self.funding_rate = BASE_FUNDING_RATE
        self.settled_rate = BASE_FUNDING_RATE
        self.premium = 0.00009
        self._drift_ms = start_ms
        self.top: tuple[int, int, int, int] | None = None  # last bbo-tbt: bid, lots, ask, lots
        self.ticker_sent: Json = {}
        self.funding_sent: Json = {}
        self.funding_key: tuple[str, int] = ("", 0)  # (rate, interval h) of the last push

    # -- books ---------------------------------------------------------------------------------
    def next_seq(self) -> int:
        """The ``seqId`` of the next update: OKX's ids grow by irregular steps."""
        self.seq_id += 1 + int(self.ids.random() * 40)
        return self.seq_id

    def restart_seq(self) -> int:
        """After maintenance the sequence starts again, far below where it was."""
        self.seq_id = 1_000 + int(self.ids.random() * 9_000)
        return self.seq_id

    def top_checksum(self, book: SimBook, enabled: bool) -> int:
        """The checksum of the book's current top 25 levels (0 when checksums are off)."""
        if not enabled:
            return 0
        depth = wire_okx.CHECKSUM_LEVELS
        return wire_okx.checksum(
            wire_okx.levels(self.spec, book.levels(True, depth)),
            wire_okx.levels(self.spec, book.levels(False, depth)),
        )

    # -- tickers -------------------------------------------------------------------------------
    def ticker_fields(self, bid: LevelTicks, ask: LevelTicks, now: int) -> Json:
        """A ``tickers`` data object: sizes in contracts, ``volCcy24h`` in the base coin."""
        spec = self.spec
        price, qty = spec.price_str, spec.qty_str
        return {
            "instType": "SWAP",
            "instId": self.inst_id,
            "last": price(self.last_tick),
            "lastSz": qty(self.last_lots),
            "askPx": price(ask[0]),
            "askSz": qty(ask[1]),
            "bidPx": price(bid[0]),
            "bidSz": qty(bid[1]),
            "open24h": price(self.open_tick),
            "high24h": price(self.high_tick),
            "low24h": price(self.low_tick),
            "sodUtc0": price(self.sod_utc0_tick),
            "sodUtc8": price(self.sod_utc8_tick),
            "volCcy24h": format_trimmed(self.volume_lots * spec.base_step, 8),
            "vol24h": qty(self.volume_lots),
            "ts": str(now),
        }

    # -- trades --------------------------------------------------------------------------------
    def trade(self, book: SimBook, size_factor: float, now: int) -> Json:
        """Execute one taker order on ``book``; the ``trades`` push OKX sends for it."""
        rng, spec = self.trade_rng, self.spec
        multiple = min(MAX_SIZE_MULTIPLE, rng.lognormvariate(0.0, 0.7))
        lots = spec.lots_for(self.profile.trade_qty * size_factor * multiple)
        is_buy = rng.random() < 0.5
        tick, filled = book.take(not is_buy, lots)  # a buy lifts the best ask
        self.trade_id += 1 + int(rng.expovariate(1.5))
        self.trade_seq += 1 + int(rng.random() * 30)
        count = 1 + int(rng.expovariate(1.2))  # fills aggregated into this one trade
        self.last_tick, self.last_lots = tick, filled
        self.high_tick, self.low_tick = max(self.high_tick, tick), min(self.low_tick, tick)
        self.volume_lots += filled
        element = wire_okx.trade(
            self.inst_id,
            self.trade_id,
            spec.price_str(tick),
            spec.qty_str(filled),
            "buy" if is_buy else "sell",
            now - int(rng.random() * 3),
            count,
            self.trade_seq,
        )
        return wire_okx.trades(self.inst_id, [element])

    # -- funding -------------------------------------------------------------------------------
    def drift(self, now: int) -> None:
        """The market's own funding estimate and premium move a little every minute."""
        if now - self._drift_ms < 60_000:
            return
        self._drift_ms = now
        rng = self.funding_rng
        self.funding_rate = round(BASE_FUNDING_RATE + rng.gauss(0.0, 3e-6), 7)
        self.premium = rng.gauss(0.00009, 1.5e-5)

    def funding_key_for(self, rate: float | None, hours: int) -> tuple[str, int]:
        """(rate text, interval) a push would carry: ``rate`` scripted, None the market's own."""
        return format_trimmed(self.funding_rate if rate is None else rate, 10), hours

    def funding_fields(self, rate: float | None, hours: int, now: int) -> Json:
        """The ``funding-rate`` data now: ``rate`` scripted (None: the market's own), the next
        settlement on a multiple of ``hours`` and the one after it."""
        funding_ms = next_funding_ms(now, hours)
        self.funding_key = self.funding_key_for(rate, hours)
        text = self.funding_key[0]
        return wire_okx.funding_fields(
            self.inst_id,
            text,
            funding_ms,
            funding_ms + hours * HOUR_MS,
            format_trimmed(self.premium, 10),
            format_trimmed(self.settled_rate, 10),
            now,
        )
