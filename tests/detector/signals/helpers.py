"""Builders shared by the analyzer, aggregator and signal tests: books, trades, funding, configs."""

from __future__ import annotations

from typing import Any

from detector.analyzer import (
    ArbitrageOpportunity,
    Direction,
    OpportunityEvent,
    OpportunityEventKind,
    TrackedOpportunity,
)
from detector.book import SyncedBook, make_book
from detector.config import DetectorConfig, SignalRules
from detector.models import (
    DepthDiff,
    DepthSnapshot,
    Exchange,
    FundingRate,
    Level,
    Side,
    Source,
    Trade,
)

SYMBOL = "BTCUSDT"


def config(
    *,
    min_profit_pct: float = 0.1,
    fees: tuple[float, float] = (0.05, 0.055),
    min_notional_usd: float = 100.0,
    stale_after_s: float = 5.0,
    volume_min_trades: int = 1,
    volume_min_notional_usd: float = 0.0,
    **rules: Any,
) -> DetectorConfig:
    """A config with taker fees (binance, bybit) in % and any SignalRules overrides.

    The volume minimums are off unless asked for: the shared scenarios trade in a few round
    lots (test_volume.py tests the minimums, with their defaults too).
    """
    return DetectorConfig(
        min_profit_pct=min_profit_pct,
        taker_fee_pct={Exchange.BINANCE: fees[0], Exchange.BYBIT: fees[1]},
        min_notional_usd=min_notional_usd,
        stale_after_s=stale_after_s,
        rules=SignalRules(
            volume_min_trades=volume_min_trades,
            volume_min_notional_usd=volume_min_notional_usd,
            **rules,
        ),
    )


def book(
    exchange: Exchange,
    bids: list[Level],
    asks: list[Level],
    recv_ms: int = 0,
    event_ms: int | None = None,
    symbol: str = SYMBOL,
) -> SyncedBook:
    """A synced book from a WS snapshot (Binance partial depth, Bybit orderbook snapshot)."""
    b = make_book(exchange, symbol)
    b.apply_snapshot(
        DepthSnapshot(
            exchange=exchange,
            symbol=symbol,
            bids=bids,
            asks=asks,
            update_id=100,
            event_time_ms=recv_ms if event_ms is None else event_ms,
            recv_ms=recv_ms,
            source=Source.WS,
        )
    )
    assert b.usable
    return b


def diff(
    b: SyncedBook,
    bids: list[Level],
    asks: list[Level],
    recv_ms: int,
    jump: int = 1,
) -> None:
    """Apply a diff that continues the book's chain (``jump`` > 1 breaks a Bybit chain)."""
    last = b.last_update_id
    assert last is not None
    b.apply_diff(
        DepthDiff(
            exchange=b.exchange,
            symbol=b.symbol,
            bids=bids,
            asks=asks,
            first_update_id=last + jump,
            final_update_id=last + jump,
            prev_update_id=last if b.exchange is Exchange.BINANCE else None,
            event_time_ms=recv_ms,
            recv_ms=recv_ms,
        )
    )


def mid_book(exchange: Exchange, mid: float, recv_ms: int, half: float = 0.005) -> SyncedBook:
    """A one-level book around ``mid`` with 2 units on each side."""
    return book(exchange, [(mid - half, 2.0)], [(mid + half, 2.0)], recv_ms)


def trade(
    price: float,
    qty: float,
    ts: int,
    exchange: Exchange = Exchange.BINANCE,
    side: Side = Side.BUY,
) -> Trade:
    return Trade(exchange, SYMBOL, price, qty, side, trade_time_ms=ts, recv_ms=ts)


def funding(
    exchange: Exchange, rate: float, ts: int, interval_hours: float | None = None
) -> FundingRate:
    return FundingRate(
        exchange=exchange,
        symbol=SYMBOL,
        rate=rate,
        interval_hours=interval_hours,
        next_funding_ms=28_800_000,
        mark_price=None,
        index_price=None,
        event_time_ms=ts,
        recv_ms=ts,
    )


def opportunity(net_pct: float, ts: int, max_volume: float = 1.0) -> ArbitrageOpportunity:
    """An opportunity at buy price 100 whose only meaningful field is its net %."""
    return ArbitrageOpportunity(
        symbol=SYMBOL,
        direction=Direction.of(Exchange.BINANCE, Exchange.BYBIT),
        profit_percentage=net_pct + 0.105,
        profit_absolute=net_pct + 0.105,
        buy_price=100.0,
        sell_price=100.0 + net_pct + 0.105,
        max_volume=max_volume,
        timestamp=ts,
        buy_exchange=Exchange.BINANCE,
        sell_exchange=Exchange.BYBIT,
        net_profit_percentage=net_pct,
        expected_profit=net_pct * max_volume,
    )


def event(
    kind: OpportunityEventKind,
    net_pct: float,
    ts: int,
    opened_ms: int = 0,
    max_volume: float = 1.0,
) -> OpportunityEvent:
    """An analyzer event about the opportunity opened at ``opened_ms``."""
    opp = opportunity(net_pct, ts, max_volume)
    tracked = TrackedOpportunity(
        id=f"{SYMBOL}:{Direction.of(Exchange.BINANCE, Exchange.BYBIT).value}:{opened_ms}",
        symbol=SYMBOL,
        direction=Direction.of(Exchange.BINANCE, Exchange.BYBIT),
        opened_ms=opened_ms,
        last=opp,
        peak=opp,
        closed_ms=ts if kind is OpportunityEventKind.CLOSED else None,
    )
    return OpportunityEvent(kind, tracked)
