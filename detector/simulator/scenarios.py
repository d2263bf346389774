"""Scripted market scenarios: what happens when, relative to the start of a simulation.

A :class:`Scenario` is a plain list of events (market effects and feed faults) with times in
seconds from the start. Scenarios are built for a list of symbols (the first one plays role
``a``, the second ``b``), so every registered scenario runs on any symbol set the model knows.
Sizes are chosen against the default :class:`detector.config.SignalRules`: the spread, volume
and momentum detectors need about a minute of history, so their events come after two minutes
(all but ``demo``, which is sized for the demo's short windows).
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


REST_FAULT_STATUSES = (429, 418, 403, 500)


@dataclass(frozen=True, slots=True)
class RestFault:
    """REST requests to ``exchange`` fail for ``duration_s`` with that exchange's real error.

    ``status`` 429: rate limited (Binance HTTP 429 ``-1003`` with ``Retry-After``; Bybit HTTP 200
    retCode 10006 "Too many visits!"). 418: banned for going on after a 429 (Binance; Bybit
    answers its IP-ban 403). 403: Binance WAF block / Bybit "access too frequent". 500: Binance
    ``-1001`` internal error / Bybit retCode 10016. Served by the loopback server, not the model.
    """

    at_s: float
    duration_s: float
    exchange: Exchange
    status: int = 429
    retry_after_s: float = 2.0

    def __post_init__(self) -> None:
        if self.status not in REST_FAULT_STATUSES:
            raise ValueError(f"RestFault status must be one of {REST_FAULT_STATUSES}")


@dataclass(frozen=True, slots=True)
class RefusedTopic:
    """For ``duration_s`` a subscribe request naming ``topic`` is refused as a whole.

    Bybit answers ``success: false`` with ``error:handler not found,topic:<topic>`` and subscribes
    none of the request's topics; Binance answers a live ``SUBSCRIBE`` with error code 2 and
    subscribes none of it (a combined-stream URL naming it connects but never delivers it).
    ``topic`` is the wire name: ``publicTrade.ETHUSDT``, ``ethusdt@aggTrade``.
    """

    at_s: float
    duration_s: float
    exchange: Exchange
    topic: str


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
    | RestFault
    | RefusedTopic
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


def live_faults(symbols: Sequence[str]) -> Scenario:
    a, b = _roles(symbols)
    return Scenario(
        "live_faults",
        "40 s of what a live client must survive: rate limits and server errors while a book "
        "needs a snapshot, a lost and a broken update, a stall over a closing crossing, dropped "
        "connections and a topic refused on resubscription",
        40.0,
        (
            ArbitrageWindow(4.0, 6.0, b, sell_on=BYBIT, net_pct=0.15),
            RestFault(8.0, 3.0, BINANCE, status=429, retry_after_s=2.0),
            SequenceGap(9.0, BINANCE, a),  # its snapshot request meets the 429
            RestFault(14.0, 1.5, BINANCE, status=500),
            SequenceGap(14.5, BINANCE, b),  # ... and this one the 500
            MalformedFrame(17.0, BYBIT, b, Malformation.TRUNCATED_JSON),
            ArbitrageWindow(20.0, 6.0, a, sell_on=BINANCE, net_pct=0.20),
            StaleFeed(23.0, 5.0, BYBIT),  # the crossing ends at 26 s while Bybit is silent
            ConnectionDrop(30.0, 3.0, BINANCE),
            RefusedTopic(33.0, 6.5, BYBIT, f"publicTrade.{b}"),  # hit by the resubscription
            ConnectionDrop(34.0, 2.0, BYBIT),
        ),
    )


def demo(symbols: Sequence[str]) -> Scenario:
    """Every signal type within 20 s: funding at 2 s, arbitrage at 4 s, then the others.

    Sized for the demo's short signal windows (``bot.demo.DEMO_RULES``: warm-ups of 3-5 s), not
    the default ones, under which only the funding divergence and the arbitrage would fire.
    """
    a, b = _roles(symbols)
    return Scenario(
        "demo",
        "every signal type in 20 s (with the demo's short signal windows)",
        25.0,
        (
            FundingShift(2.0, BYBIT, b, 0.0008),
            ArbitrageWindow(4.0, 4.0, a, sell_on=BYBIT, net_pct=0.2),
            SpreadBlowout(9.0, 3.0, BINANCE, b, spread_bps=5.0),
            VolumeSpike(11.0, 3.0, BYBIT, a, rate_factor=12.0, size_factor=2.0),
            PriceMove(14.5, 1.5, b, move_pct=1.0),
        ),
    )


ScenarioBuilder = Callable[[Sequence[str]], Scenario]

SCENARIOS: dict[str, ScenarioBuilder] = {
    "demo": demo,
    "calm": calm,
    "arbitrage": arbitrage,
    "faults": faults,
    "showcase": showcase,
    "live_faults": live_faults,
}
"""Every named scenario, by name."""


def build_scenario(name: str, symbols: Sequence[str]) -> Scenario:
    """The scenario ``name`` for ``symbols``; ValueError naming the known ones if unknown."""
    try:
        builder = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return builder(symbols)
