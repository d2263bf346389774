"""CrossExchangeAnalyzer and find_opportunity on hand-checked books."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.analyzer import (
    CloseReason,
    CrossExchangeAnalyzer,
    Direction,
    OpportunityEventKind,
    find_opportunity,
)
from detector.book import OrderBook, SyncedBook, make_book
from detector.models import Exchange, Level
from tests.detector.signals.helpers import book, config, diff

BINANCE, BYBIT, OKX = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX
B2Y = Direction.of(Exchange.BINANCE, Exchange.BYBIT)
Y2B = Direction.of(Exchange.BYBIT, Exchange.BINANCE)
OPENED, UPDATED, CLOSED = (
    OpportunityEventKind.OPENED,
    OpportunityEventKind.UPDATED,
    OpportunityEventKind.CLOSED,
)
# Default VIP0 taker fees as fractions: Binance 0.05 %, Bybit 0.055 %.
FB, FY = 0.0005, 0.00055


def levels(bids: list[Level], asks: list[Level]) -> OrderBook:
    b = OrderBook()
    b.replace(bids, asks)
    return b


DEEP_ASKS = [(100.0, 1.0), (100.5, 2.0), (101.0, 5.0)]
DEEP_BIDS = [(102.0, 0.5), (101.0, 1.0), (100.0, 10.0)]


@pytest.mark.parametrize(
    ("asks", "bids", "fee", "volume", "profit", "net"),
    [
        # No fees: 0.5 @ (102-100) + 0.5 @ (101-100) + 0.5 @ (101-100.5); then 100 < 100.5 stops.
        (DEEP_ASKS, DEEP_BIDS, 0.0, 1.5, 1.0 + 0.5 + 0.25, 2.0),
        # 0.1 % each side: edges 101.898-100.1, 100.899-100.1, 100.899-100.6005.
        (DEEP_ASKS, DEEP_BIDS, 0.001, 1.5, 0.899 + 0.3995 + 0.14925, 1.7962037962037962),
        # The third step is gross-profitable (101 > 100.85) but not after fees: the walk stops.
        ([(100.0, 1.0), (100.85, 2.0)], DEEP_BIDS, 0.001, 1.0, 0.899 + 0.3995, 1.7962037962037962),
        # Equal sizes advance both sides: 1 @ 1.0, then 1 @ 0.3.
        ([(100.0, 1.0), (100.2, 1.0)], [(101.0, 1.0), (100.5, 1.0)], 0.0, 2.0, 1.3, 1.0),
        # Not crossed: the opportunity is still described, with no volume.
        ([(101.0, 1.0)], [(100.0, 1.0)], 0.0, 0.0, 0.0, -0.9900990099009901),
    ],
)
def test_find_opportunity_walks_both_books(
    asks: list[Level],
    bids: list[Level],
    fee: float,
    volume: float,
    profit: float,
    net: float,
) -> None:
    buy = levels([(asks[0][0] - 1.0, 1.0)], asks)
    sell = levels(bids, [(bids[0][0] + 1.0, 1.0)])
    opp = find_opportunity("BTCUSDT", B2Y, buy, sell, fee, fee, 1234)
    assert opp is not None
    assert opp.buy_price == asks[0][0]
    assert opp.sell_price == bids[0][0]
    assert opp.profit_absolute == pytest.approx(bids[0][0] - asks[0][0])
    assert opp.profit_percentage == pytest.approx((bids[0][0] - asks[0][0]) / asks[0][0] * 100)
    assert opp.max_volume == pytest.approx(volume)
    assert opp.expected_profit == pytest.approx(profit)
    assert opp.net_profit_percentage == pytest.approx(net)
    assert opp.notional == pytest.approx(volume * asks[0][0])
    assert (opp.buy_exchange, opp.sell_exchange, opp.timestamp) == (BINANCE, BYBIT, 1234)


def test_find_opportunity_none_when_a_side_is_empty() -> None:
    full = levels([(99.0, 1.0)], [(100.0, 1.0)])
    assert find_opportunity("X", B2Y, levels([(99.0, 1.0)], []), full, 0, 0, 0) is None
    assert find_opportunity("X", B2Y, full, levels([], [(100.0, 1.0)]), 0, 0, 0) is None


def test_to_dict_is_plain() -> None:
    opp = find_opportunity(
        "X", Y2B, levels([], [(100.0, 2.0)]), levels([(101.0, 1.0)], []), 0, 0, 7
    )
    assert opp is not None
    d = opp.to_dict()
    assert d["direction"] == "buy_bybit_sell_binance"
    assert (d["buy_exchange"], d["sell_exchange"]) == ("bybit", "binance")
    assert d["max_volume"] == 1.0 and d["notional"] == 100.0 and d["timestamp"] == 7
    assert all(isinstance(v, str | int | float) for v in d.values())


def binance_cheap(
    t: int = 1000, bid: float = 100.5, ask_qty: float = 2.0
) -> tuple[SyncedBook, ...]:
    """Binance asks 100 (qty ``ask_qty``), Bybit bids ``bid`` x 3: buy Binance, sell Bybit."""
    return (
        book(BINANCE, [(99.0, 5.0)], [(100.0, ask_qty)], t),
        book(BYBIT, [(bid, 3.0)], [(bid + 0.5, 1.0)], t),
    )


@pytest.mark.parametrize(
    ("direction", "net", "profit"),
    [
        # Buy Binance at 100 (+0.05 %), sell Bybit at 100.5 (-0.055 %): 2 x (100.444725 - 100.05).
        (B2Y, (100.5 * (1 - FY) / (100.0 * (1 + FB)) - 1) * 100, 2 * 0.394725),
        # Buy Bybit at 100 (+0.055 %), sell Binance at 100.5 (-0.05 %): 2 x (100.44975 - 100.055).
        (Y2B, (100.5 * (1 - FB) / (100.0 * (1 + FY)) - 1) * 100, 2 * 0.39475),
    ],
)
def test_both_directions_with_each_exchanges_fee(
    direction: Direction, net: float, profit: float
) -> None:
    cheap = book(BINANCE if direction is B2Y else BYBIT, [(99.0, 5.0)], [(100.0, 2.0)], 1000)
    rich = book(BYBIT if direction is B2Y else BINANCE, [(100.5, 3.0)], [(101.0, 1.0)], 1000)
    binance, bybit = (cheap, rich) if direction is B2Y else (rich, cheap)
    events = CrossExchangeAnalyzer(config()).update("BTCUSDT", (binance, bybit), 1000)
    assert [e.kind for e in events] == [OPENED]
    opp = events[0].opportunity
    assert opp.direction is direction
    assert opp.profit_percentage == pytest.approx(0.5)  # gross
    assert opp.net_profit_percentage == pytest.approx(net)
    assert opp.net_profit_percentage == pytest.approx(0.3945, abs=1e-4)
    assert (opp.max_volume, opp.expected_profit) == (2.0, pytest.approx(profit))
    assert events[0].tracked.id == f"BTCUSDT:{direction.value}:1000"


@pytest.mark.parametrize(
    ("bid", "min_profit", "opens"),
    [
        (100.15, 0.1, False),  # gross 0.15 %, net 0.0449 %: fees eat it
        (100.15, 0.04, True),
        (100.16, 0.05, True),  # EXCHANGES.md: a 0.16 % gross gap is about 0.06 % net
        (100.16, 0.06, False),
        (100.0, 0.0, False),  # no gap: nothing to walk, nothing reported even at a 0 threshold
    ],
)
def test_net_threshold(bid: float, min_profit: float, opens: bool) -> None:
    analyzer = CrossExchangeAnalyzer(config(min_profit_pct=min_profit))
    events = analyzer.update("BTCUSDT", binance_cheap(bid=bid), now_ms=1000)
    assert bool(events) is opens


@pytest.mark.parametrize(("ask_qty", "opens"), [(0.9, False), (1.0, True)])
def test_min_notional(ask_qty: float, opens: bool) -> None:
    events = CrossExchangeAnalyzer(config()).update("BTCUSDT", binance_cheap(ask_qty=ask_qty), 1000)
    assert bool(events) is opens  # 0.9 x 100 = 90 < 100 <= 1.0 x 100


def test_quick_reject_skips_the_walk() -> None:
    analyzer = CrossExchangeAnalyzer(config())
    analyzer.update("BTCUSDT", binance_cheap(bid=100.1), now_ms=1000)
    assert analyzer.walks == {}
    analyzer.update("BTCUSDT", binance_cheap(bid=100.5), now_ms=1000)
    assert analyzer.walks == {B2Y: 1}


def test_lifecycle_open_update_peak_close() -> None:
    analyzer = CrossExchangeAnalyzer(config())
    binance, bybit = binance_cheap(t=1000)
    [opened] = analyzer.update("BTCUSDT", (binance, bybit), 1000)
    assert opened.kind is OPENED and opened.tracked.opened_ms == 1000

    diff(bybit, [(100.5, 0.0), (100.6, 3.0)], [], 1500)
    [up] = analyzer.update("BTCUSDT", (binance, bybit), 1500)
    assert up.kind is UPDATED and up.tracked.updates == 1
    assert up.tracked.peak.sell_price == 100.6

    diff(bybit, [(100.6, 0.0), (100.4, 3.0)], [], 2000)
    [down] = analyzer.update("BTCUSDT", (binance, bybit), 2000)
    assert down.kind is UPDATED and down.tracked.updates == 2
    assert down.tracked.last.sell_price == 100.4
    assert down.tracked.peak.sell_price == 100.6  # the peak is by net %
    assert down.tracked.duration_ms == 1000  # so far

    assert analyzer.update("BTCUSDT", (binance, bybit), 2200) == []  # nothing changed
    assert [t.id for t in analyzer.open_opportunities()] == ["BTCUSDT:buy_binance_sell_bybit:1000"]

    diff(bybit, [(100.4, 0.0), (100.1, 3.0)], [], 3000)
    [closed] = analyzer.update("BTCUSDT", (binance, bybit), 3000)
    assert closed.kind is CLOSED
    t = closed.tracked
    assert (t.closed_ms, t.close_reason, t.duration_ms, t.updates) == (
        3000,
        CloseReason.BELOW_THRESHOLD,
        2000,
        2,
    )
    assert t.peak.sell_price == 100.6 and not t.is_open
    assert t.to_dict()["close_reason"] == "below_threshold"
    assert analyzer.open_opportunities() == []


def test_closes_on_unsynced_book_and_stays_closed() -> None:
    analyzer = CrossExchangeAnalyzer(config())
    binance, bybit = binance_cheap(t=1000)
    assert analyzer.update("BTCUSDT", (binance, bybit), 1000)[0].kind is OPENED
    diff(bybit, [(100.7, 3.0)], [], 1100, jump=5)  # Bybit u jumps: the book is discarded
    assert not bybit.usable
    [closed] = analyzer.update("BTCUSDT", (binance, bybit), 1100)
    assert (closed.kind, closed.tracked.close_reason) == (CLOSED, CloseReason.UNSYNCED)
    assert analyzer.update("BTCUSDT", (binance, bybit), 1200) == []
    assert analyzer.update("BTCUSDT", (binance, make_book(BYBIT, "BTCUSDT")), 1200) == []


def test_missing_or_crossed_book_is_unsynced() -> None:
    analyzer = CrossExchangeAnalyzer(config())
    binance, bybit = binance_cheap(t=1000)
    analyzer.update("BTCUSDT", (binance, bybit), 1000)
    empty = make_book(BINANCE, "BTCUSDT")  # a venue's book not synced yet
    [closed] = analyzer.update("BTCUSDT", (empty, bybit), 1000)
    assert closed.tracked.close_reason is CloseReason.UNSYNCED
    diff(binance, [(100.2, 1.0)], [], 1100)  # bid 100.2 above ask 100: crossed
    assert not binance.usable
    assert analyzer.update("BTCUSDT", (binance, bybit), 1100) == []


def test_closes_on_stale_book_and_opens_nothing_while_stale() -> None:
    analyzer = CrossExchangeAnalyzer(config())  # stale after 5 s
    binance, bybit = binance_cheap(t=1000)
    analyzer.update("BTCUSDT", (binance, bybit), 1000)
    diff(bybit, [(100.6, 3.0)], [], 5000)
    assert analyzer.update("BTCUSDT", (binance, bybit), 6000)[0].kind is UPDATED  # age 5000: fresh
    [closed] = analyzer.update("BTCUSDT", (binance, bybit), 6001)
    assert (closed.tracked.close_reason, closed.tracked.closed_ms) == (CloseReason.STALE, 6001)
    diff(bybit, [(100.8, 3.0)], [], 6500)  # fresh Bybit, Binance still stale: nothing opens
    assert analyzer.update("BTCUSDT", (binance, bybit), 6500) == []
    diff(binance, [], [(100.0, 2.0)], 6600)
    [reopened] = analyzer.update("BTCUSDT", (binance, bybit), 6600)
    assert reopened.kind is OPENED
    assert reopened.tracked.id == "BTCUSDT:buy_binance_sell_bybit:6600"


def test_reopen_within_the_same_millisecond_gets_a_distinct_id() -> None:
    analyzer = CrossExchangeAnalyzer(config())
    binance, bybit = binance_cheap(t=1000)
    analyzer.update("BTCUSDT", (binance, bybit), 1000)
    diff(bybit, [(100.5, 0.0), (100.0, 3.0)], [], 1000)
    assert analyzer.update("BTCUSDT", (binance, bybit), 1000)[0].kind is CLOSED
    diff(bybit, [(100.5, 3.0)], [], 1000)
    [again] = analyzer.update("BTCUSDT", (binance, bybit), 1000)
    assert again.tracked.id == "BTCUSDT:buy_binance_sell_bybit:1000#1"


def test_stats() -> None:
    analyzer = CrossExchangeAnalyzer(config())
    binance, bybit = binance_cheap(t=1000)
    analyzer.update("BTCUSDT", (binance, bybit), 1000)  # net 0.3945
    diff(bybit, [(100.5, 0.0), (100.6, 3.0)], [], 1500)
    analyzer.update("BTCUSDT", (binance, bybit), 1500)  # peak: sells at 100.6
    diff(bybit, [(100.6, 0.0), (100.1, 3.0)], [], 3000)
    analyzer.update("BTCUSDT", (binance, bybit), 3000)  # closed after 2000 ms
    diff(bybit, [(100.1, 0.0), (100.5, 3.0)], [], 4000)
    analyzer.update("BTCUSDT", (binance, bybit), 4000)
    diff(bybit, [(100.5, 0.0), (100.1, 3.0)], [], 4500)
    analyzer.update("BTCUSDT", (binance, bybit), 4500)  # closed after 500 ms
    eth_binance, eth_bybit = binance_cheap(t=5000)
    analyzer.update("ETHUSDT", (eth_binance, eth_bybit), 5000)  # still open

    net_100_5 = (100.5 * (1 - FY) / (100.0 * (1 + FB)) - 1) * 100  # 0.3945 %
    net_100_6 = (100.6 * (1 - FY) / (100.0 * (1 + FB)) - 1) * 100  # 0.4945 %
    profit_100_5 = 2 * (100.5 * (1 - FY) - 100.0 * (1 + FB))  # 0.78945
    profit_100_6 = 2 * (100.6 * (1 - FY) - 100.0 * (1 + FB))  # 0.98934

    btc = analyzer.stats("BTCUSDT")
    assert (btc.opened, btc.closed, btc.open_now) == (2, 2, 0)
    assert btc.avg_peak_net_pct == pytest.approx((net_100_6 + net_100_5) / 2)
    assert btc.max_peak_net_pct == pytest.approx(net_100_6)
    assert (btc.mean_duration_ms, btc.median_duration_ms, btc.max_duration_ms) == (1250, 1250, 2000)
    assert btc.total_expected_profit_at_peak == pytest.approx(profit_100_6 + profit_100_5)
    assert btc.by_direction == {B2Y.value: 2, Y2B.value: 0}
    assert btc.by_close_reason == {"below_threshold": 2, "unsynced": 0, "stale": 0, "delisted": 0}

    overall = analyzer.stats()
    assert (overall.symbol, overall.opened, overall.closed, overall.open_now) == (None, 3, 2, 1)
    assert overall.avg_peak_net_pct == pytest.approx((net_100_6 + 2 * net_100_5) / 3)
    assert overall.total_expected_profit_at_peak == pytest.approx(profit_100_6 + 2 * profit_100_5)
    assert overall.median_duration_ms == 1250 and overall.by_direction[B2Y.value] == 3

    empty = analyzer.stats("SOLUSDT")
    assert (empty.opened, empty.avg_peak_net_pct, empty.median_duration_ms) == (0, None, None)
    assert empty.to_dict()["by_direction"] == {B2Y.value: 0, Y2B.value: 0}


def three_venue_config() -> Any:
    venues = (BINANCE, BYBIT, OKX)
    return replace(
        config(), exchanges=venues, taker_fee_pct={BINANCE: 0.05, BYBIT: 0.055, OKX: 0.05}
    )


def test_every_ordered_pair_of_three_venues_is_evaluated() -> None:
    analyzer = CrossExchangeAnalyzer(three_venue_config())
    binance = book(BINANCE, [(99.0, 5.0)], [(100.0, 2.0)], 1000)
    bybit = book(BYBIT, [(99.9, 3.0)], [(100.8, 1.0)], 1000)  # crosses nobody
    okx = book(OKX, [(100.6, 1.5)], [(101.0, 1.0)], 1000)  # bids above Binance's ask
    [opened] = analyzer.update("BTCUSDT", (binance, bybit, okx), 1000)
    tracked = opened.tracked
    assert tracked.direction is Direction.parse("buy_binance_sell_okx")
    assert tracked.id == "BTCUSDT:buy_binance_sell_okx:1000"
    found = tracked.last
    assert (found.buy_exchange, found.sell_exchange) == (BINANCE, OKX)
    # Both venues' own fees: buy Binance at 100 (+0.05 %), sell OKX at 100.6 (-0.05 %).
    assert found.net_profit_percentage == pytest.approx((100.6 * 0.9995 / (100 * 1.0005) - 1) * 100)
    assert found.max_volume == 1.5  # the depth walk: OKX's 1.5 at 100.6 against Binance's 2
    # OKX goes stale: only its pairs close; a Bybit-Binance crossing still opens.
    diff(bybit, [(100.5, 3.0)], [], 7000)
    diff(binance, [], [(100.0, 2.0)], 7000)
    events = analyzer.update("BTCUSDT", (binance, bybit, okx), 7000)
    kinds = {(e.kind, e.tracked.direction.value) for e in events}
    assert kinds == {(CLOSED, "buy_binance_sell_okx"), (OPENED, "buy_binance_sell_bybit")}
    closed = next(e for e in events if e.kind is CLOSED)
    assert closed.tracked.close_reason is CloseReason.STALE
    stats = analyzer.stats("BTCUSDT")
    assert set(stats.by_direction) == {d.value for d in Direction.between((BINANCE, BYBIT, OKX))}
    assert stats.by_direction["buy_binance_sell_okx"] == 1


def test_directions_are_named_after_their_venues() -> None:
    assert [d.value for d in Direction.between((BINANCE, OKX))] == [
        "buy_binance_sell_okx",
        "buy_okx_sell_binance",
    ]
    assert Direction.parse("buy_bybit_sell_binance") is Direction.of(
        Exchange.BYBIT, Exchange.BINANCE
    )
    assert Direction.of(OKX, BYBIT).reverse is Direction.parse("buy_bybit_sell_okx")
    with pytest.raises(ValueError, match="not a direction"):
        Direction.parse("buy_binance_sell_binance")


@settings(max_examples=300, deadline=None)
@given(
    tops=st.lists(
        st.tuples(
            st.floats(99.0, 101.0), st.floats(0.0001, 0.5), st.floats(0.001, 5.0)
        ),  # mid, half spread, size
        min_size=3,
        max_size=3,
    ),
    fees=st.tuples(st.floats(0.0, 0.1), st.floats(0.0, 0.1), st.floats(0.0, 0.1)),
    min_profit=st.floats(0.0, 0.5),
)
def test_the_one_bound_rejects_only_what_every_pair_rejects(
    tops: list[tuple[float, float, float]], fees: tuple[float, float, float], min_profit: float
) -> None:
    """With nothing open, the analyzer opens exactly the pairs that clear both thresholds, as a
    pair-by-pair evaluation does, whichever venue's fee or top makes the difference."""
    venues = (BINANCE, BYBIT, OKX)
    cfg = replace(
        config(min_profit_pct=min_profit, min_notional_usd=0.0),
        exchanges=venues,
        taker_fee_pct=dict(zip(venues, fees, strict=True)),
    )
    books = tuple(
        book(venue, [(mid - half, size)], [(mid + half, size)], recv_ms=0)
        for venue, (mid, half, size) in zip(venues, tops, strict=True)
    )
    events = CrossExchangeAnalyzer(cfg).update("BTCUSDT", books, 1)
    expected = set()
    for buy in books:
        for sell in books:
            if buy is sell:
                continue
            direction = Direction.of(buy.exchange, sell.exchange)
            fee_buy, fee_sell = cfg.fee(buy.exchange), cfg.fee(sell.exchange)
            found = find_opportunity(
                "BTCUSDT", direction, buy.levels, sell.levels, fee_buy, fee_sell, 1
            )
            if (
                found is not None
                and found.net_profit_percentage >= min_profit
                and found.max_volume > 0.0
            ):
                expected.add(direction)
    assert {event.tracked.direction for event in events} == expected
    assert all(event.kind is OPENED for event in events)
