"""RealtimeSignalAggregator: feeds the five detectors, keeps the active signals, calls subscribers.

Pure and synchronous: every method takes ``now_ms``. The definitions of the signals are in the
detector modules of :mod:`detector.signals` and in docs/signals.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from detector.analyzer import OpportunityEvent, OpportunityEventKind
from detector.book import SyncedBook
from detector.config import DetectorConfig
from detector.models import Exchange, FundingRate, Trade
from detector.signals.arbitrage import ArbitrageDetector, signal_key
from detector.signals.funding import FundingDivergenceDetector
from detector.signals.momentum import MomentumBreakoutDetector
from detector.signals.signal import Signal, SignalStrength, SignalType
from detector.signals.spread import SpreadAnomalyDetector
from detector.signals.volume import VolumeSpikeDetector

SignalCallback = Callable[[Signal], None]


class RealtimeSignalAggregator:
    """Turns opportunities and market data into deduplicated, expiring signals (the seed's name)."""

    def __init__(self, config: DetectorConfig) -> None:
        self._stale_after_ms = config.stale_after_ms
        self._arbitrage = ArbitrageDetector(config)
        self._spread = SpreadAnomalyDetector(config)
        self._volume = VolumeSpikeDetector(config)
        self._funding = FundingDivergenceDetector(config)
        self._momentum = MomentumBreakoutDetector(config)
        self._callbacks: list[SignalCallback] = []
        self._active: dict[str, Signal] = {}  # key -> latest signal of that episode
        self._emitted = {t: dict.fromkeys(SignalStrength, 0) for t in SignalType}

    def add_callback(self, fn: SignalCallback) -> None:
        """Call ``fn`` with every signal emitted from now on, in emission order.

        Callbacks run after the aggregator's state is updated; an exception from one propagates to
        the caller of the ``on_*`` method (the remaining callbacks of that signal do not run).
        """
        self._callbacks.append(fn)

    def on_opportunities(
        self,
        events: list[OpportunityEvent],
        books: Sequence[SyncedBook],
        now_ms: int,
    ) -> list[Signal]:
        """ARBITRAGE signals from the analyzer's events about one symbol (``books``: its book on
        each venue); a CLOSED event retires its signal."""
        for event in events:
            if event.kind is OpportunityEventKind.CLOSED:
                self._active.pop(signal_key(event.tracked), None)
        return self._publish(self._arbitrage.on_events(events, books, now_ms), now_ms)

    def on_book(
        self, exchange: Exchange, symbol: str, book: SyncedBook, now_ms: int
    ) -> list[Signal]:
        """SPREAD_ANOMALY and MOMENTUM_BREAKOUT; call it only for usable, fresh books.

        A book that is not (unsynced, crossed, or older than ``stale_after_s``) is ignored.
        """
        age = book.age_ms(now_ms)
        if not book.usable or age is None or age > self._stale_after_ms:
            return []
        signals = self._spread.on_book(exchange, symbol, book, now_ms)
        signals += self._momentum.on_book(exchange, symbol, book, now_ms)
        return self._publish(signals, now_ms)

    def on_trade(self, symbol: str, trade: Trade, now_ms: int) -> list[Signal]:
        """VOLUME_SPIKE from one public trade; ``symbol`` is the canonical symbol."""
        return self._publish(self._volume.on_trade(symbol, trade, now_ms), now_ms)

    def on_funding(self, symbol: str, event: FundingRate, now_ms: int) -> list[Signal]:
        """FUNDING_RATE_DIVERGENCE from one funding-rate update."""
        return self._publish(self._funding.on_funding(symbol, event, now_ms), now_ms)

    def set_funding_interval(self, exchange: Exchange, symbol: str, hours: float) -> None:
        """The funding interval of ``symbol`` on ``exchange`` (Binance /fapi/v1/fundingInfo)."""
        self._funding.set_funding_interval(exchange, symbol, hours)

    def on_book_unusable(self, exchange: Exchange, symbol: str, now_ms: int) -> None:
        """The book went unsynced or stale: drop the rolling state that assumed its continuity."""
        self._spread.reset(exchange, symbol)
        self._momentum.reset(exchange, symbol)

    def active_signals(self, now_ms: int) -> list[Signal]:
        """The latest signal of every episode not yet expired (nor closed), oldest first."""
        self._prune(now_ms)
        return sorted(self._active.values(), key=lambda s: (s.timestamp, s.key))

    def stats(self) -> dict[str, Any]:
        """Emitted signals by type and strength, and suppressed duplicates by type."""
        suppressed = {
            SignalType.ARBITRAGE.value: self._arbitrage.suppressed,
            SignalType.SPREAD_ANOMALY.value: self._spread.suppressed,
            SignalType.VOLUME_SPIKE.value: self._volume.suppressed,
            SignalType.FUNDING_RATE_DIVERGENCE.value: self._funding.suppressed,
            SignalType.MOMENTUM_BREAKOUT.value: self._momentum.suppressed,
        }
        return {
            "emitted": sum(sum(counts.values()) for counts in self._emitted.values()),
            "by_type": {t.value: sum(self._emitted[t].values()) for t in SignalType},
            "by_strength": {
                s.value: sum(self._emitted[t][s] for t in SignalType) for s in SignalStrength
            },
            "by_type_and_strength": {
                t.value: {s.value: self._emitted[t][s] for s in SignalStrength} for t in SignalType
            },
            "suppressed": suppressed,
            "suppressed_total": sum(suppressed.values()),
        }

    def _publish(self, signals: list[Signal], now_ms: int) -> list[Signal]:
        if not signals:
            return signals
        for signal in signals:
            self._emitted[signal.type][signal.strength] += 1
            self._active.pop(signal.key, None)  # re-insert: the dict stays in emission order
            self._active[signal.key] = signal
        self._prune(now_ms)
        for signal in signals:
            for callback in self._callbacks:
                callback(signal)
        return signals

    def _prune(self, now_ms: int) -> None:
        expired = [key for key, signal in self._active.items() if signal.is_expired(now_ms)]
        for key in expired:
            del self._active[key]
