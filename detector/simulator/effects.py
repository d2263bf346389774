"""A scenario compiled to absolute-millisecond windows that the market model queries (pure)."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from detector.models import Exchange
from detector.simulator.scenarios import (
    ArbitrageWindow,
    ConnectionDrop,
    FundingShift,
    MalformedFrame,
    PriceMove,
    Scenario,
    SequenceGap,
    SequenceReset,
    SpreadBlowout,
    StaleFeed,
    VolumeSpike,
    scenario_venues,
)
from detector.simulator.wire import Malformation

Window = tuple[int, int]
DEFAULT_FUNDING_HOURS = 8
OneShot = Malformation | None  # None: the update is lost (a sequence gap)


class Effects:
    """What the scenario does to each symbol and exchange at a given time."""

    def __init__(
        self,
        scenario: Scenario | None,
        start_ms: int,
        symbols: Sequence[str],
        venues: Collection[Exchange] = tuple(Exchange),
    ) -> None:
        self.moves: dict[str, list[tuple[int, int, float]]] = {s: [] for s in symbols}
        self.arbitrages: dict[str, list[tuple[int, int, ArbitrageWindow]]] = {
            s: [] for s in symbols
        }
        self.blowouts: dict[tuple[Exchange, str], list[tuple[int, int, float]]] = {}
        self.spikes: dict[tuple[Exchange, str], list[tuple[int, int, float, float]]] = {}
        self.funding_shifts: dict[tuple[Exchange, str], list[tuple[int, float, int | None]]] = {}
        self.stale: dict[Exchange, list[Window]] = {e: [] for e in Exchange}
        self.down: dict[Exchange, list[Window]] = {e: [] for e in Exchange}
        self.one_shots: dict[tuple[Exchange, str], list[tuple[int, OneShot]]] = {}
        self.resets: dict[tuple[Exchange, str], list[int]] = {}  # OKX seqId restarts
        if scenario is None:
            return
        missing = scenario_venues(scenario.events) - set(venues)
        if missing:
            names = ", ".join(sorted(e.value for e in missing))
            raise ValueError(f"scenario {scenario.name!r} uses {names}, not simulated")

        def window(at_s: float, duration_s: float) -> Window:
            begin = start_ms + round(at_s * 1000)
            return begin, begin + max(1, round(duration_s * 1000))

        for event in scenario.events:
            symbol = getattr(event, "symbol", None)
            if symbol is not None and symbol not in self.moves:
                raise ValueError(f"scenario {scenario.name!r} uses {symbol}, not simulated")
            match event:
                case PriceMove():
                    self.moves[event.symbol].append(
                        (*window(event.at_s, event.duration_s), event.move_pct / 100.0)
                    )
                case ArbitrageWindow():
                    w = window(event.at_s, event.duration_s)
                    self.arbitrages[event.symbol].append((*w, event))
                case SpreadBlowout():
                    key = (event.exchange, event.symbol)
                    w = window(event.at_s, event.duration_s)
                    self.blowouts.setdefault(key, []).append((*w, event.spread_bps))
                case VolumeSpike():
                    key = (event.exchange, event.symbol)
                    w = window(event.at_s, event.duration_s)
                    spike = (*w, event.rate_factor, event.size_factor)
                    self.spikes.setdefault(key, []).append(spike)
                case FundingShift():
                    key = (event.exchange, event.symbol)
                    at = window(event.at_s, 0)[0]
                    shift = (at, event.rate, event.interval_hours)
                    self.funding_shifts.setdefault(key, []).append(shift)
                case StaleFeed():
                    self.stale[event.exchange].append(window(event.at_s, event.duration_s))
                case ConnectionDrop():
                    self.down[event.exchange].append(window(event.at_s, event.duration_s))
                case SequenceGap():
                    shot: tuple[int, OneShot] = (window(event.at_s, 0)[0], None)
                    self.one_shots.setdefault((event.exchange, event.symbol), []).append(shot)
                case MalformedFrame():
                    shot = (window(event.at_s, 0)[0], event.kind)
                    self.one_shots.setdefault((event.exchange, event.symbol), []).append(shot)
                case SequenceReset():
                    at = window(event.at_s, 0)[0]
                    self.resets.setdefault((event.exchange, event.symbol), []).append(at)
        for resets in self.resets.values():
            resets.sort()
        for shifts in self.funding_shifts.values():
            shifts.sort(key=lambda s: s[0])
        for shots in self.one_shots.values():
            shots.sort(key=lambda s: s[0])

    def price_factor(self, symbol: str, now: int) -> float:
        """Multiplier of the fair price from scripted moves (smoothstep over each move)."""
        factor = 1.0
        for begin, end, move in self.moves[symbol]:
            if now >= begin:
                x = min(1.0, (now - begin) / (end - begin))
                factor *= 1.0 + move * x * x * (3.0 - 2.0 * x)
        return factor

    def arbitrage(self, symbol: str, now: int) -> ArbitrageWindow | None:
        for begin, end, event in self.arbitrages[symbol]:
            if begin <= now < end:
                return event
        return None

    def spread_bps(self, exchange: Exchange, symbol: str, now: int) -> float | None:
        for begin, end, bps in self.blowouts.get((exchange, symbol), ()):
            if begin <= now < end:
                return bps
        return None

    def trade_factors(self, exchange: Exchange, symbol: str, now: int) -> tuple[float, float]:
        """(rate factor, size factor) of the trades of ``exchange``/``symbol``."""
        for begin, end, rate, size in self.spikes.get((exchange, symbol), ()):
            if begin <= now < end:
                return rate, size
        return 1.0, 1.0

    def funding(self, exchange: Exchange, symbol: str, now: int) -> tuple[float | None, int]:
        """(scripted rate in force or None for the market's own, funding interval in hours)."""
        rate, hours = None, DEFAULT_FUNDING_HOURS
        for at, value, interval in self.funding_shifts.get((exchange, symbol), ()):
            if at > now:
                break
            rate = value
            hours = interval or hours
        return rate, hours

    def is_stale(self, exchange: Exchange, now: int) -> bool:
        return any(begin <= now < end for begin, end in self.stale[exchange])

    def is_down(self, exchange: Exchange, now: int) -> bool:
        return any(begin <= now < end for begin, end in self.down[exchange])

    def disconnects(self) -> list[tuple[int, Exchange, int]]:
        """(begin, exchange, end) of every dropped connection, in time order."""
        return sorted((b, e, end) for e, spans in self.down.items() for b, end in spans)

    def take_one_shot(self, exchange: Exchange, symbol: str, now: int) -> tuple[bool, OneShot]:
        """(due, kind) of the next lost or malformed update; a due one is consumed."""
        shots = self.one_shots.get((exchange, symbol))
        if shots and shots[0][0] <= now:
            return True, shots.pop(0)[1]
        return False, None

    def take_reset(self, exchange: Exchange, symbol: str, now: int) -> bool:
        """Whether the book sequence of ``exchange``/``symbol`` restarts now (consumed if so)."""
        resets = self.resets.get((exchange, symbol))
        if resets and resets[0] <= now:
            resets.pop(0)
            return True
        return False

    @staticmethod
    def ticks_for_bps(bps: float, price: float, tick: float) -> int:
        return max(1, math.ceil(bps * 1e-4 * price / tick))
