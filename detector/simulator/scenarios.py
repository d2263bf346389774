"""Scripted market scenarios: what happens when, relative to the start of a simulation.

A :class:`Scenario` is a plain list of events (market effects and feed faults) with times in
seconds from the start. Scenarios are built for a list of symbols (the first one plays role
``a``, the second ``b``), so every registered scenario runs on any symbol set the model knows.
Sizes are chosen against the default :class:`detector.config.SignalRules`: the spread, volume
and momentum detectors need about a minute of history, so their events come after two minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from detector.models import Exchange
from detector.simulator.wire import Malformation


@dataclass(frozen=True, slots=True)
class ArbitrageWindow:
    """``sell_on``'s best bid rises above the other exchange's best ask by ``net_pct`` after fees.

    Both books move by half the gap, in opposite directions, so neither exchange's mid moves by
    more than the momentum detector's weak tier for net margins up to about 0.19 %.
    """

    at_s: float
    duration_s: float
    symbol: str
    sell_on: Exchange = Exchange.BYBIT
    net_pct: float = 0.15
    depth_usd: float = 50_000.0  # at least this much rests at each crossing level

    @property
    def buy_on(self) -> Exchange:
        return Exchange.BINANCE if self.sell_on is Exchange.BYBIT else Exchange.BYBIT


@dataclass(frozen=True, slots=True)
class FundingShift:
    """From ``at_s`` on, ``exchange`` quotes ``rate`` per funding interval for ``symbol``.

    ``interval_hours`` changes the interval too (Bybit ``fundingIntervalHour``; on Binance only
    the next funding time shows it). Both exchanges fund every 8 h unless a shift says otherwise.
    """

    at_s: float
    exchange: Exchange
    symbol: str
    rate: float
    interval_hours: int | None = None


@dataclass(frozen=True, slots=True)
class VolumeSpike:
    """Trades on one exchange come ``rate_factor`` times as often and ``size_factor`` as big."""

    at_s: float
    duration_s: float
    exchange: Exchange
    symbol: str
    rate_factor: float = 10.0
    size_factor: float = 2.0


@dataclass(frozen=True, slots=True)
class PriceMove:
    """The fair price moves by ``move_pct`` over ``duration_s`` (smoothly), then stays there."""

    at_s: float
    duration_s: float
    symbol: str
    move_pct: float = 1.0


@dataclass(frozen=True, slots=True)
class SpreadBlowout:
    """One exchange's spread widens to ``spread_bps`` around the same mid (liquidity pulled)."""

    at_s: float
    duration_s: float
    exchange: Exchange
    symbol: str
    spread_bps: float = 5.0  # the detector ignores spreads under 2 bps


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """One book update of ``exchange``/``symbol`` is lost (Binance pu break, Bybit u jump)."""

    at_s: float
    exchange: Exchange
    symbol: str


@dataclass(frozen=True, slots=True)
class StaleFeed:
    """``exchange`` publishes nothing for ``duration_s``, then goes on where it stopped."""

    at_s: float
    duration_s: float
    exchange: Exchange


@dataclass(frozen=True, slots=True)
class MalformedFrame:
    """The next book update of ``exchange``/``symbol`` is sent broken (and so is lost)."""

    at_s: float
    exchange: Exchange
    symbol: str
    kind: Malformation = Malformation.TRUNCATED_JSON


@dataclass(frozen=True, slots=True)
class ConnectionDrop:
    """The server drops every connection of ``exchange``; reconnects work after ``duration_s``."""

    at_s: float
    duration_s: float
    exchange: Exchange


ScenarioEvent = (
    ArbitrageWindow
    | FundingShift
    | VolumeSpike
    | PriceMove
    | SpreadBlowout
    | SequenceGap
    | StaleFeed
    | MalformedFrame
    | ConnectionDrop
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named script of events over ``duration_s`` seconds of market time."""

    name: str
    description: str
    duration_s: float
    events: tuple[ScenarioEvent, ...] = ()

    def timeline(self) -> list[str]:
        """One line per event, in time order: ``"  60.0s +15.0s ArbitrageWindow ETHUSDT ..."``."""
        lines = []
        for event in sorted(self.events, key=lambda e: e.at_s):
            duration = getattr(event, "duration_s", None)
            span = f"+{duration:.1f}s" if duration is not None else "     -"
            fields = [
                f"{name}={getattr(event, name)}"
                for name in event.__dataclass_fields__
                if name not in ("at_s", "duration_s")
            ]
            lines.append(f"{event.at_s:6.1f}s {span:>7} {type(event).__name__} {' '.join(fields)}")
        return lines


BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT


def _roles(symbols: Sequence[str]) -> tuple[str, str]:
    if not symbols:
        raise ValueError("a scenario needs at least one symbol")
    return symbols[0], symbols[1 % len(symbols)]


def calm(symbols: Sequence[str]) -> Scenario:
    _roles(symbols)
    return Scenario("calm", "five quiet minutes: no signal should fire", 300.0)


def arbitrage(symbols: Sequence[str]) -> Scenario:
    a, b = _roles(symbols)
    return Scenario(
        "arbitrage",
        "three crossings: Bybit over Binance, Binance over Bybit, one under the fee threshold",
        90.0,
        (
            ArbitrageWindow(20.0, 10.0, a, sell_on=BYBIT, net_pct=0.15),
            ArbitrageWindow(45.0, 8.0, b, sell_on=BINANCE, net_pct=0.30),
            ArbitrageWindow(70.0, 5.0, a, sell_on=BYBIT, net_pct=0.05),
        ),
    )


def faults(symbols: Sequence[str]) -> Scenario:
    a, b = _roles(symbols)
    return Scenario(
        "faults",
        "lost updates, malformed frames, a stale feed over an open crossing, dropped connections",
        150.0,
        (
            SequenceGap(20.0, BINANCE, a),
            SequenceGap(35.0, BYBIT, b),
            MalformedFrame(50.0, BINANCE, b, Malformation.TRUNCATED_JSON),
            MalformedFrame(60.0, BYBIT, a, Malformation.BAD_PRICE),
            ArbitrageWindow(75.0, 15.0, b, sell_on=BYBIT, net_pct=0.15),
            StaleFeed(83.0, 8.0, BYBIT),  # the crossing ends at 90 s while Bybit is silent
            ConnectionDrop(105.0, 5.0, BINANCE),
            ConnectionDrop(125.0, 5.0, BYBIT),
        ),
    )


def showcase(symbols: Sequence[str]) -> Scenario:
    a, b = _roles(symbols)
    return Scenario(
        "showcase",
        "every signal type, a lost update on each exchange and a stale feed, in 4.5 minutes",
        270.0,
        (
            FundingShift(30.0, BYBIT, b, 0.0008),  # vs Binance 0.0001: 0.07 % per 8 h
            SequenceGap(45.0, BINANCE, a),
            ArbitrageWindow(60.0, 15.0, b, sell_on=BYBIT, net_pct=0.15),
            StaleFeed(68.0, 8.0, BYBIT),  # the crossing ends at 75 s while Bybit is silent
            SpreadBlowout(125.0, 8.0, BINANCE, a, spread_bps=5.0),
            VolumeSpike(150.0, 6.0, BYBIT, b, rate_factor=10.0, size_factor=2.0),
            PriceMove(185.0, 3.0, a, move_pct=1.0),
            SequenceGap(200.0, BYBIT, b),
            ArbitrageWindow(215.0, 10.0, a, sell_on=BINANCE, net_pct=0.17),
        ),
    )


ScenarioBuilder = Callable[[Sequence[str]], Scenario]

SCENARIOS: dict[str, ScenarioBuilder] = {
    "calm": calm,
    "arbitrage": arbitrage,
    "faults": faults,
    "showcase": showcase,
}
"""Every named scenario, by name."""


def build_scenario(name: str, symbols: Sequence[str]) -> Scenario:
    """The scenario ``name`` for ``symbols``; ValueError naming the known ones if unknown."""
    try:
        builder = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return builder(symbols)
