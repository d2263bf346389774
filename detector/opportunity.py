"""One arbitrage crossing between two books: the formulas, with no state (pure).

Definitions (``fb``, ``fs``: taker fees of the buy and sell exchange, as fractions):

- ``buy_price`` = best ask of the buy exchange, ``sell_price`` = best bid of the sell exchange;
  ``profit_absolute = sell_price - buy_price``, ``profit_percentage`` = that / buy_price * 100.
- ``net_profit_percentage = (sell_price*(1-fs) / (buy_price*(1+fb)) - 1) * 100``.
- ``max_volume``: walk the buy asks upward and the sell bids downward, matching quantities level by
  level; a step counts while ``bid*(1-fs) > ask*(1+fb)``. ``expected_profit`` = sum of
  ``q*(bid*(1-fs) - ask*(1+fb))`` over the matched steps, in quote currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from detector.book import OrderBook
from detector.models import Exchange


@dataclass(frozen=True, slots=True, eq=False)
class Direction:
    """Which venue an opportunity buys on and which it sells on: one ordered pair of venues.

    Its ``value`` is ``buy_<venue>_sell_<venue>`` (``buy_binance_sell_bybit``), the name in
    signals and recordings, so a new venue brings new directions without a new definition. One
    instance per pair (get it with :meth:`of` or :meth:`parse`): compared and hashed by
    identity, as cheap as an enum member on the hot path.
    """

    buy_exchange: Exchange
    sell_exchange: Exchange
    value: str = field(init=False)

    def __post_init__(self) -> None:
        if self.buy_exchange is self.sell_exchange:
            raise ValueError(f"a direction needs two venues, not {self.buy_exchange} twice")
        value = f"buy_{self.buy_exchange.value}_sell_{self.sell_exchange.value}"
        object.__setattr__(self, "value", value)

    @classmethod
    def of(cls, buy: Exchange, sell: Exchange) -> Direction:
        """The direction buying on ``buy`` and selling on ``sell``."""
        return _ALL[(buy, sell)]

    @classmethod
    def parse(cls, value: str) -> Direction:
        """``buy_okx_sell_binance`` → its direction; ValueError for anything else."""
        found = _BY_VALUE.get(value)
        if found is None:
            raise ValueError(f"not a direction: {value!r}")
        return found

    @classmethod
    def between(cls, exchanges: Iterable[Exchange]) -> tuple[Direction, ...]:
        """Every ordered pair of ``exchanges``, in their order: (a, b), (b, a), (a, c), ..."""
        venues = list(dict.fromkeys(exchanges))
        pairs: list[Direction] = []
        for i, a in enumerate(venues):
            for b in venues[i + 1 :]:
                pairs += [_ALL[(a, b)], _ALL[(b, a)]]
        return tuple(pairs)

    @property
    def reverse(self) -> Direction:
        return _ALL[(self.sell_exchange, self.buy_exchange)]

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Direction({self.value})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Direction.parse, (self.value,))


# One instance per ordered pair of venues, by pair and by value.
_ALL: dict[tuple[Exchange, Exchange], Direction] = {}
_BY_VALUE: dict[str, Direction] = {}
for _buy in Exchange:
    for _sell in Exchange:
        if _buy is not _sell:
            _made = Direction(_buy, _sell)
            _ALL[(_buy, _sell)] = _BY_VALUE[_made.value] = _made


@dataclass(frozen=True, slots=True)
class ArbitrageOpportunity:
    """One cross-exchange crossing at one instant (the seed's name and fields)."""

    symbol: str
    direction: Direction
    profit_percentage: float  # gross, before fees
    profit_absolute: float  # sell_price - buy_price, quote currency per unit
    buy_price: float
    sell_price: float
    max_volume: float  # base quantity that stays profitable after fees
    timestamp: int  # ms, detector clock
    buy_exchange: Exchange
    sell_exchange: Exchange
    net_profit_percentage: float  # after both taker fees
    expected_profit: float  # quote currency, after fees, over max_volume

    @property
    def notional(self) -> float:
        """Quote value of the executable volume at the best ask."""
        return self.max_volume * self.buy_price

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "direction": self.direction.value,
            "buy_exchange": self.buy_exchange.value,
            "sell_exchange": self.sell_exchange.value,
            "buy_price": self.buy_price,
            "sell_price": self.sell_price,
            "profit_absolute": self.profit_absolute,
            "profit_percentage": self.profit_percentage,
            "net_profit_percentage": self.net_profit_percentage,
            "max_volume": self.max_volume,
            "notional": self.notional,
            "expected_profit": self.expected_profit,
            "timestamp": self.timestamp,
        }


def net_profit_pct(buy_price: float, sell_price: float, fee_buy: float, fee_sell: float) -> float:
    """Net profit in % of buying at ``buy_price`` and selling at ``sell_price`` after taker fees."""
    return (sell_price * (1.0 - fee_sell) / (buy_price * (1.0 + fee_buy)) - 1.0) * 100.0


def find_opportunity(
    symbol: str,
    direction: Direction,
    buy_book: OrderBook,
    sell_book: OrderBook,
    fee_buy: float,
    fee_sell: float,
    now_ms: int,
) -> ArbitrageOpportunity | None:
    """The crossing of ``buy_book``'s asks with ``sell_book``'s bids; None when a side is empty.

    The result may be unprofitable (negative profit, zero volume): thresholds are the caller's.
    """
    best_ask = buy_book.best_ask()
    best_bid = sell_book.best_bid()
    if best_ask is None or best_bid is None:
        return None
    buy_price = best_ask[0]
    sell_price = best_bid[0]
    volume, profit = _walk(buy_book, sell_book, 1.0 + fee_buy, 1.0 - fee_sell)
    return ArbitrageOpportunity(
        symbol=symbol,
        direction=direction,
        profit_percentage=(sell_price - buy_price) / buy_price * 100.0,
        profit_absolute=sell_price - buy_price,
        buy_price=buy_price,
        sell_price=sell_price,
        max_volume=volume,
        timestamp=now_ms,
        buy_exchange=direction.buy_exchange,
        sell_exchange=direction.sell_exchange,
        net_profit_percentage=net_profit_pct(buy_price, sell_price, fee_buy, fee_sell),
        expected_profit=profit,
    )


def _walk(
    buy_book: OrderBook, sell_book: OrderBook, cost: float, keep: float
) -> tuple[float, float]:
    """Match asks upward against bids downward while a step stays profitable after fees."""
    asks = buy_book.iter_asks()
    bids = sell_book.iter_bids()
    ask = next(asks, None)
    bid = next(bids, None)
    if ask is None or bid is None:
        return 0.0, 0.0
    ask_left = ask[1]
    bid_left = bid[1]
    volume = 0.0
    profit = 0.0
    while True:
        edge = bid[0] * keep - ask[0] * cost
        if edge <= 0.0:
            break
        qty = min(ask_left, bid_left)
        volume += qty
        profit += qty * edge
        # Compare remainders instead of subtracting to zero, so equal sizes advance both sides.
        if ask_left <= bid_left:
            bid_left -= ask_left
            ask = next(asks, None)
            if ask is None:
                break
            ask_left = ask[1]
        else:
            ask_left -= bid_left
            bid_left = 0.0
        if bid_left <= 0.0:
            bid = next(bids, None)
            if bid is None:
                break
            bid_left = bid[1]
    return volume, profit
