"""What the loopback server's handlers share: the model, the clock, the fault schedule, counters.

The fault schedule compiles a scenario's server-side faults (dropped connections, REST errors,
refused topics) to absolute-millisecond windows, the way :mod:`detector.simulator.effects`
does for the market model; the market cache keeps the last frames the server relayed, so REST
answers agree with what the streams said (pure, no I/O).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from detector.models import Exchange
from detector.simulator import wire
from detector.simulator.market import MarketModel
from detector.simulator.scenarios import (
    ConnectionDrop,
    FundingShift,
    RefusedTopic,
    RestFault,
    Scenario,
    StaleFeed,
)
from detector.simulator.wire import Frame

DEFAULT_FUNDING_HOURS = 8


@dataclass(slots=True)
class ServerStats:
    """Counters of what the server did, per exchange where that makes sense."""

    frames_sent: Counter[Exchange] = field(default_factory=Counter)  # market data, per client
    connections: Counter[Exchange] = field(default_factory=Counter)  # WebSockets accepted
    refused_connections: Counter[Exchange] = field(default_factory=Counter)  # 503 while down
    rest_requests: Counter[Exchange] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)  # by kind, each time one was applied


class FaultSchedule:
    """A scenario's server-side faults as absolute windows ``[begin, end)`` in milliseconds."""

    def __init__(self, scenario: Scenario, start_ms: int) -> None:
        def window(at_s: float, duration_s: float) -> tuple[int, int]:
            begin = start_ms + round(at_s * 1000)
            return begin, begin + max(1, round(duration_s * 1000))

        self.down: dict[Exchange, list[tuple[int, int]]] = {e: [] for e in Exchange}
        self.stale: dict[Exchange, list[tuple[int, int]]] = {e: [] for e in Exchange}
        self.rest: dict[Exchange, list[tuple[int, int, RestFault]]] = {e: [] for e in Exchange}
        self.refused: dict[Exchange, list[tuple[int, int, str]]] = {e: [] for e in Exchange}
        self.funding: dict[tuple[Exchange, str], list[tuple[int, int]]] = {}
        for event in scenario.events:
            if isinstance(event, ConnectionDrop):
                self.down[event.exchange].append(window(event.at_s, event.duration_s))
            elif isinstance(event, StaleFeed):
                self.stale[event.exchange].append(window(event.at_s, event.duration_s))
            elif isinstance(event, RestFault):
                w = window(event.at_s, event.duration_s)
                self.rest[event.exchange].append((*w, event))
            elif isinstance(event, RefusedTopic):
                w = window(event.at_s, event.duration_s)
                self.refused[event.exchange].append((*w, event.topic))
            elif isinstance(event, FundingShift) and event.interval_hours is not None:
                at = window(event.at_s, 0)[0]
                key = (event.exchange, event.symbol)
                self.funding.setdefault(key, []).append((at, event.interval_hours))
        for shifts in self.funding.values():
            shifts.sort()

    def down_until(self, exchange: Exchange, now: int) -> int | None:
        """The end of the outage of ``exchange`` at ``now`` (new connections are refused)."""
        for begin, end in self.down[exchange]:
            if begin <= now < end:
                return end
        return None

    def is_stale(self, exchange: Exchange, now: int) -> bool:
        """Whether the model holds ``exchange``'s feed back at ``now`` (a stall)."""
        return any(begin <= now < end for begin, end in self.stale[exchange])

    def rest_fault(self, exchange: Exchange, now: int) -> tuple[RestFault, int] | None:
        """The REST fault of ``exchange`` in force at ``now`` and the end of its window."""
        for begin, end, fault in self.rest[exchange]:
            if begin <= now < end:
                return fault, end
        return None

    def refused_topic(self, exchange: Exchange, topics: Iterable[str], now: int) -> str | None:
        """The first of ``topics`` refused at ``now``, if any."""
        active = {topic for begin, end, topic in self.refused[exchange] if begin <= now < end}
        return next((topic for topic in topics if topic in active), None)

    def funding_hours(self, exchange: Exchange, symbol: str, now: int) -> int:
        """The funding interval of ``symbol`` on ``exchange`` at ``now`` (8 h unless scripted)."""
        hours = DEFAULT_FUNDING_HOURS
        for at, interval in self.funding.get((exchange, symbol), ()):
            if at > now:
                break
            hours = interval
        return hours


class MarketCache:
    """The last Binance frames the server relayed, per symbol: REST answers repeat them."""

    def __init__(self) -> None:
        self.binance_mark: dict[str, dict[str, Any]] = {}  # markPriceUpdate data
        self.binance_trade: dict[str, dict[str, Any]] = {}  # aggTrade data
        self.binance_depth_u: dict[str, int] = {}  # u of the last depthUpdate

    def observe(self, frame: Frame) -> None:
        if frame.exchange is not Exchange.BINANCE or frame.malformed:
            return
        data = frame.data["data"]
        kind = data["e"]
        if kind == "markPriceUpdate":
            self.binance_mark[data["s"]] = data
        elif kind == "aggTrade":
            self.binance_trade[data["s"]] = data
        elif kind == "depthUpdate":
            self.binance_depth_u[data["s"]] = data["u"]


@dataclass(slots=True)
class ServerContext:
    """Everything a request handler may read: the model, the time, faults, caches, counters."""

    model: MarketModel
    faults: FaultSchedule
    clock: Callable[[], float]
    seed: int
    stats: ServerStats = field(default_factory=ServerStats)
    cache: MarketCache = field(default_factory=MarketCache)

    def now_ms(self) -> int:
        """Wall-clock time as the exchanges stamp it (never behind the model)."""
        return max(int(self.clock() * 1000), self.model.now_ms)

    @property
    def symbols(self) -> list[str]:
        return self.model.symbols


def binance_channel_group(endpoint: str) -> str:
    """``"public"`` or ``"market"``: the routed path a Binance stream is served on."""
    return "public" if endpoint == wire.BINANCE_PUBLIC_STREAM else "market"
