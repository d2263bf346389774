"""Scripted market scenarios: what happens when, relative to the start of a simulation.

A :class:`Scenario` is a plain list of events (market effects and feed faults) with times in
seconds from the start. Scenarios are built for a list of symbols (the first one plays role
``a``, the second ``b``), so every registered scenario runs on any symbol set the model knows.
Sizes are chosen against the default :class:`detector.config.SignalRules`: the spread, volume
and momentum detectors need about a minute of history, so their events come after two minutes
(all but ``demo``, which is sized for the demo's short windows).

OKX: every event that names an exchange can name :attr:`Exchange.OKX`, an
:class:`ArbitrageWindow` can open between any two venues (``buy_on``), and
:class:`SequenceReset` is OKX's own. The registered scenarios script OKX events only when asked
(``build_scenario(name, symbols, okx=True)``, or :data:`WITH_OKX` set to True): until the
detector consumes OKX, what they do to Binance and Bybit stays exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from detector.models import Exchange
from detector.simulator.instruments import okx_inst_id
from detector.simulator.wire import Malformation


@dataclass(frozen=True, slots=True)
class ArbitrageWindow:
    """``sell_on``'s best bid rises above ``buy_on``'s best ask by ``net_pct`` after both
    venues' taker fees; any other venue's book is left alone.

    Both books move by half the gap, in opposite directions, so neither exchange's mid moves by
    more than the momentum detector's weak tier for net margins up to about 0.19 %. ``buy_on``
    None is the other of Binance and Bybit (Binance when OKX sells): the two-venue windows of
    before. Only one window per symbol is open at a time (the first listed wins).
    """

    at_s: float
    duration_s: float
    symbol: str
    sell_on: Exchange = Exchange.BYBIT
    net_pct: float = 0.15
    depth_usd: float = 50_000.0  # at least this much rests at each crossing level
    buy_on: Exchange | None = None

    def __post_init__(self) -> None:
        if self.buy_on is self.sell_on:
            raise ValueError(f"ArbitrageWindow buys and sells on {self.sell_on}: name two venues")

    @property
    def buy_venue(self) -> Exchange:
        """The venue whose ask falls: ``buy_on``, or the default pair's other venue."""
        if self.buy_on is not None:
            return self.buy_on
        return Exchange.BYBIT if self.sell_on is Exchange.BINANCE else Exchange.BINANCE

    @property
    def venues(self) -> tuple[Exchange, Exchange]:
        """(buy venue, sell venue)."""
        return self.buy_venue, self.sell_on


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
    """One book update of ``exchange``/``symbol`` is lost (Binance pu break, Bybit u jump, OKX
    prevSeqId that is not the last seqId)."""

    at_s: float
    exchange: Exchange
    symbol: str


@dataclass(frozen=True, slots=True)
class SequenceReset:
    """OKX after maintenance: the next ``books`` update of ``symbol`` restarts its ``seqId``
    below its ``prevSeqId`` (which still names the last update: the chain is unbroken)."""

    at_s: float
    exchange: Exchange
    symbol: str

    def __post_init__(self) -> None:
        if self.exchange is not Exchange.OKX:
            raise ValueError(f"only OKX restarts its book sequence, not {self.exchange}")


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
    OKX refuses that one arg with an ``error`` event, code 60018, and subscribes the others.
    ``topic`` is the wire name: ``publicTrade.ETHUSDT``, ``ethusdt@aggTrade``, and for OKX
    ``channel:instId`` (``trades:ETH-USDT-SWAP``, see :func:`okx_topic`).
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
    | SequenceReset
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
                and not (name == "buy_on" and getattr(event, name) is None)
            ]
            lines.append(f"{event.at_s:6.1f}s {span:>7} {type(event).__name__} {' '.join(fields)}")
        return lines


BINANCE, BYBIT, OKX = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX

WITH_OKX = False
"""Whether the registered scenarios script their OKX events when ``build_scenario`` is not told.

Off until the detector consumes OKX: the scenarios' Binance and Bybit events (and the frames
they make) do not depend on it, the OKX ones come on top. Set it to True (or pass ``okx=True``)
to get OKX faults in ``faults``/``live_faults`` and OKX windows in ``arbitrage``/``showcase``/
``demo``. The simulator serves OKX either way, calm where no event names it.
"""


def okx_topic(channel: str, symbol: str) -> str:
    """The OKX wire name of a subscription for :class:`RefusedTopic`: ``trades:ETH-USDT-SWAP``."""
    return f"{channel}:{okx_inst_id(symbol)}"


def scenario_venues(events: Iterable[ScenarioEvent]) -> set[Exchange]:
    """Every venue an event names (an arbitrage window names both of its venues)."""
    venues: set[Exchange] = set()
    for event in events:
        if isinstance(event, ArbitrageWindow):
            venues.update(event.venues)
        else:
            exchange = getattr(event, "exchange", None)
            if isinstance(exchange, Exchange):
                venues.add(exchange)
    return venues


def _roles(symbols: Sequence[str]) -> tuple[str, str]:
    if not symbols:
        raise ValueError("a scenario needs at least one symbol")
    return symbols[0], symbols[1 % len(symbols)]


def calm(symbols: Sequence[str], okx: bool = False) -> Scenario:
    _roles(symbols)
    return Scenario("calm", "five quiet minutes: no signal should fire", 300.0)


def arbitrage(symbols: Sequence[str], okx: bool = False) -> Scenario:
    a, b = _roles(symbols)
    events: tuple[ScenarioEvent, ...] = (
        ArbitrageWindow(20.0, 10.0, a, sell_on=BYBIT, net_pct=0.15),
        ArbitrageWindow(45.0, 8.0, b, sell_on=BINANCE, net_pct=0.30),
        ArbitrageWindow(70.0, 5.0, a, sell_on=BYBIT, net_pct=0.05),
    )
    description = (
        "three crossings: Bybit over Binance, Binance over Bybit, one under the fee threshold"
    )
    if okx:
        events += (
            ArbitrageWindow(35.0, 6.0, a, sell_on=BINANCE, net_pct=0.2, buy_on=OKX),
            ArbitrageWindow(58.0, 6.0, b, sell_on=OKX, net_pct=0.2, buy_on=BYBIT),
        )
        description += "; OKX under Binance, OKX over Bybit"
    return Scenario("arbitrage", description, 90.0, events)


def faults(symbols: Sequence[str], okx: bool = False) -> Scenario:
    a, b = _roles(symbols)
    events: tuple[ScenarioEvent, ...] = (
        SequenceGap(20.0, BINANCE, a),
        SequenceGap(35.0, BYBIT, b),
        MalformedFrame(50.0, BINANCE, b, Malformation.TRUNCATED_JSON),
        MalformedFrame(60.0, BYBIT, a, Malformation.BAD_PRICE),
        ArbitrageWindow(75.0, 15.0, b, sell_on=BYBIT, net_pct=0.15),
        StaleFeed(83.0, 8.0, BYBIT),  # the crossing ends at 90 s while Bybit is silent
        ConnectionDrop(105.0, 5.0, BINANCE),
        ConnectionDrop(125.0, 5.0, BYBIT),
    )
    description = (
        "lost updates, malformed frames, a stale feed over an open crossing, dropped connections"
    )
    if okx:
        events += (
            SequenceGap(28.0, OKX, a),  # a prevSeqId break: resubscribe the book
            SequenceReset(42.0, OKX, b),  # maintenance: seqId restarts lower, chain unbroken
            ArbitrageWindow(137.0, 8.0, a, sell_on=OKX, net_pct=0.15, buy_on=BINANCE),
            ConnectionDrop(140.0, 4.0, OKX),  # ... cut in the middle of that crossing
            RefusedTopic(139.0, 8.0, OKX, okx_topic("trades", b)),  # met on resubscription
        )
        description += "; OKX: a prevSeqId break, a seqId reset, a drop over a crossing"
    return Scenario("faults", description, 150.0, events)


def showcase(symbols: Sequence[str], okx: bool = False) -> Scenario:
    a, b = _roles(symbols)
    events: tuple[ScenarioEvent, ...] = (
        FundingShift(30.0, BYBIT, b, 0.0008),  # vs Binance 0.0001: 0.07 % per 8 h
        SequenceGap(45.0, BINANCE, a),
        ArbitrageWindow(60.0, 15.0, b, sell_on=BYBIT, net_pct=0.15),
        StaleFeed(68.0, 8.0, BYBIT),  # the crossing ends at 75 s while Bybit is silent
        SpreadBlowout(125.0, 8.0, BINANCE, a, spread_bps=5.0),
        VolumeSpike(150.0, 6.0, BYBIT, b, rate_factor=10.0, size_factor=2.0),
        PriceMove(185.0, 3.0, a, move_pct=1.0),
        SequenceGap(200.0, BYBIT, b),
        ArbitrageWindow(215.0, 10.0, a, sell_on=BINANCE, net_pct=0.17),
    )
    if okx:
        events += (
            FundingShift(35.0, OKX, a, -0.0003, interval_hours=4),  # 4 h funding on OKX
            SequenceGap(100.0, OKX, a),
            ArbitrageWindow(240.0, 10.0, b, sell_on=OKX, net_pct=0.18, buy_on=BINANCE),
        )
    return Scenario(
        "showcase",
        "every signal type, a lost update on each exchange and a stale feed, in 4.5 minutes",
        270.0,
        events,
    )


def live_faults(symbols: Sequence[str], okx: bool = False) -> Scenario:
    a, b = _roles(symbols)
    events: tuple[ScenarioEvent, ...] = (
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
    )
    description = (
        "40 s of what a live client must survive: rate limits and server errors while a book "
        "needs a snapshot, a lost and a broken update, a stall over a closing crossing, dropped "
        "connections and a topic refused on resubscription"
    )
    if okx:
        events += (
            ArbitrageWindow(11.0, 5.0, a, sell_on=OKX, net_pct=0.15, buy_on=BYBIT),
            SequenceGap(12.5, OKX, b),  # a prevSeqId break: that one book is resubscribed
            SequenceReset(14.0, OKX, a),  # within the open crossing: it must stay open
            RefusedTopic(26.5, 5.0, OKX, okx_topic("trades", b)),  # hit on resubscription
            ConnectionDrop(27.0, 2.0, OKX),
        )
        description += "; on OKX a prevSeqId break, a seqId reset, a drop and a refused instId"
    return Scenario("live_faults", description, 40.0, events)


def demo(symbols: Sequence[str], okx: bool = False) -> Scenario:
    """Every signal type within 20 s: funding at 2 s, arbitrage at 4 s, then the others.

    Sized for the demo's short signal windows (``bot.demo.DEMO_RULES``: warm-ups of 3-5 s), not
    the default ones, under which only the funding divergence and the arbitrage would fire.
    With ``okx``, two more windows only OKX makes (with Binance, then with Bybit) close it.
    """
    a, b = _roles(symbols)
    events: tuple[ScenarioEvent, ...] = (
        FundingShift(2.0, BYBIT, b, 0.0008),
        ArbitrageWindow(4.0, 4.0, a, sell_on=BYBIT, net_pct=0.2),
        SpreadBlowout(9.0, 3.0, BINANCE, b, spread_bps=5.0),
        VolumeSpike(11.0, 3.0, BYBIT, a, rate_factor=12.0, size_factor=2.0),
        PriceMove(14.5, 1.5, b, move_pct=1.0),
    )
    if okx:
        events += (
            ArbitrageWindow(17.0, 3.0, b, sell_on=BINANCE, net_pct=0.18, buy_on=OKX),
            ArbitrageWindow(20.5, 3.0, a, sell_on=OKX, net_pct=0.18, buy_on=BYBIT),
        )
    return Scenario(
        "demo", "every signal type in 20 s (with the demo's short signal windows)", 25.0, events
    )


def regression(symbols: Sequence[str], okx: bool = False) -> Scenario:
    """The showcase's signals beside the faults' faults, for the replay's golden output.

    Its recording (``tests/golden``) must replay to the same bytes after every change of the
    hot path: it has every signal type, a lost update on each venue, a stale feed over an open
    crossing, malformed frames and dropped connections (and, with ``okx``, an OKX seqId reset).
    """
    a, b = _roles(symbols)
    events: tuple[ScenarioEvent, ...] = (
        FundingShift(30.0, BYBIT, b, 0.0008),
        SequenceGap(45.0, BINANCE, a),
        MalformedFrame(50.0, BINANCE, b, Malformation.TRUNCATED_JSON),
        ArbitrageWindow(60.0, 15.0, b, sell_on=BYBIT, net_pct=0.15),
        StaleFeed(68.0, 8.0, BYBIT),
        MalformedFrame(90.0, BYBIT, a, Malformation.BAD_PRICE),
        SpreadBlowout(125.0, 8.0, BINANCE, a, spread_bps=5.0),
        VolumeSpike(150.0, 6.0, BYBIT, b, rate_factor=10.0, size_factor=2.0),
        ConnectionDrop(165.0, 5.0, BYBIT),
        PriceMove(185.0, 3.0, a, move_pct=1.0),
        SequenceGap(200.0, BYBIT, b),
        ArbitrageWindow(215.0, 10.0, a, sell_on=BINANCE, net_pct=0.17),
        ConnectionDrop(230.0, 5.0, BINANCE),
    )
    if okx:
        events += (
            FundingShift(35.0, OKX, a, -0.0003, interval_hours=4),
            SequenceGap(100.0, OKX, a),
            SequenceReset(115.0, OKX, b),
            ArbitrageWindow(240.0, 10.0, b, sell_on=OKX, net_pct=0.18, buy_on=BINANCE),
            ConnectionDrop(255.0, 4.0, OKX),
        )
    return Scenario(
        "regression",
        "every signal type and every feed fault in 4.5 minutes: the golden replay's recording",
        270.0,
        events,
    )


class ScenarioBuilder(Protocol):
    """Builds a registered scenario for a symbol list (``okx``: with its OKX events)."""

    def __call__(self, symbols: Sequence[str], okx: bool = False) -> Scenario: ...


SCENARIOS: dict[str, ScenarioBuilder] = {
    "demo": demo,
    "calm": calm,
    "arbitrage": arbitrage,
    "faults": faults,
    "showcase": showcase,
    "live_faults": live_faults,
    "regression": regression,
}
"""Every named scenario, by name."""


def build_scenario(name: str, symbols: Sequence[str], *, okx: bool | None = None) -> Scenario:
    """The scenario ``name`` for ``symbols``; ValueError naming the known ones if unknown.

    ``okx`` adds the scenario's OKX events (None: :data:`WITH_OKX`).
    """
    try:
        builder = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return builder(symbols, WITH_OKX if okx is None else okx)
