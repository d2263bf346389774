"""The frames obey the exchanges' sequencing rules, and the model is deterministic."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from detector.models import Exchange, Source
from detector.recording import Record
from detector.simulator import wire
from detector.simulator.instruments import profile
from detector.simulator.market import MarketModel
from detector.simulator.scenarios import Scenario, SequenceGap
from detector.simulator.session import DEFAULT_START_MS, generate_records
from detector.simulator.wire import Frame
from tests.detector.simulator.replica import BinanceReplica, BybitReplica, Replay, at

BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT


def depth_events(records: list[Record], symbol: str) -> list[tuple[int, dict[str, Any]]]:
    return [
        (r.ts, r.data["data"])
        for r in records
        if isinstance(r.data, dict) and r.data.get("stream") == f"{symbol.lower()}@depth@100ms"
    ]


def replay(records: list[Record]) -> Replay:
    state = Replay()
    for record in records:
        state.feed(record)
    return state


@pytest.mark.parametrize(
    ("scenario", "symbol", "breaks"),
    [
        ("showcase", "BTCUSDT", [45.0]),  # the scripted lost event
        ("showcase", "ETHUSDT", []),
        ("faults", "BTCUSDT", [20.0, 105.0]),  # lost event; reconnect after the dropped connection
        ("faults", "ETHUSDT", [50.0, 105.0]),  # truncated (unreadable) event; reconnect
    ],
)
def test_binance_pu_is_the_previous_u_except_where_scripted(
    request: pytest.FixtureRequest, scenario: str, symbol: str, breaks: list[float]
) -> None:
    records: list[Record] = request.getfixturevalue(scenario)
    events = depth_events(records, symbol)
    assert len(events) > 1000
    found = []
    for (_, prev), (ts, event) in pairwise(events):
        assert event["U"] > prev["u"]  # ids only grow, by irregular jumps
        assert event["u"] >= event["U"]
        if event["pu"] != prev["u"]:
            found.append(ts)
    assert len(found) == len(breaks)
    for ts, scripted in zip(found, breaks, strict=True):
        assert at(scripted) <= ts <= at(scripted) + 6_000


@pytest.mark.parametrize("scenario", ["showcase", "faults", "calm"])
def test_binance_books_bridge_and_match_every_book_ticker(
    request: pytest.FixtureRequest, scenario: str
) -> None:
    records: list[Record] = request.getfixturevalue(scenario)
    state = replay(records)  # asserts U <= lastUpdateId <= u and every matching bookTicker
    rest_calls = sum(r.source is Source.REST for r in records)
    assert rest_calls >= 2
    assert sum(len(b.bridges) for b in state.binance.values()) == rest_calls
    assert state.book_tickers_checked > 1000
    for replica in state.binance.values():
        assert replica.state == "synced"
        assert replica.applied > 1000


def test_rest_snapshot_is_fetched_200_to_500_ms_after_the_stream_opens(
    showcase: list[Record],
) -> None:
    first_ws = next(r.ts for r in showcase if r.exchange is BINANCE)
    rest = [r for r in showcase if r.source is Source.REST]
    assert {r.endpoint for r in rest[:2]} == {
        "/fapi/v1/depth?symbol=BTCUSDT&limit=1000",
        "/fapi/v1/depth?symbol=ETHUSDT&limit=1000",
    }
    for record in rest[:2]:
        assert 150 <= record.ts - first_ws <= 600


def test_a_lost_binance_event_is_followed_by_a_new_snapshot(showcase: list[Record]) -> None:
    state = replay(showcase)
    btc = state.binance["BTCUSDT"]
    assert len(btc.gaps) == 1
    gap = btc.gaps[0]
    refetch = [r.ts for r in showcase if r.source is Source.REST and r.ts > gap]
    assert refetch
    assert 300 <= refetch[0] - gap <= 400
    assert state.binance["ETHUSDT"].gaps == []


def test_bybit_u_grows_by_one_except_where_scripted(faults: list[Record]) -> None:
    state = replay(faults)
    btc, eth = state.bybit["BTCUSDT"], state.bybit["ETHUSDT"]
    assert len(eth.gaps) == 1  # the scripted u jump at 35 s
    assert at(35) <= eth.gaps[0] <= at(36)
    assert len(btc.gaps) == 1  # after the unreadable frame at 60 s
    assert at(60) <= btc.gaps[0] <= at(61)
    for replica in (btc, eth):
        assert replica.synced
        # start, resubscribe after the gap, resubscribe after the dropped connection
        assert len(replica.snapshots) == 3


def test_bybit_resubscribes_after_a_gap(showcase: list[Record]) -> None:
    state = replay(showcase)
    (gap,) = state.bybit["ETHUSDT"].gaps
    acks = [(r.ts, r.data["op"]) for r in showcase if isinstance(r.data, dict) and "op" in r.data]
    after = [(ts, op) for ts, op in acks if ts > gap and op != "ping"]
    assert [op for _, op in after] == ["unsubscribe", "subscribe"]
    assert 300 <= after[0][0] - gap <= 400
    snapshot = state.bybit["ETHUSDT"].snapshots[-1]
    assert after[1][0] <= snapshot <= after[1][0] + 50
    assert state.bybit["BTCUSDT"].gaps == []


def test_bybit_starts_with_the_ack_then_snapshots(showcase: list[Record]) -> None:
    bybit = [r.data for r in showcase if r.exchange is BYBIT][:6]
    assert bybit[0] == {
        "success": True,
        "ret_msg": "",
        "conn_id": bybit[0]["conn_id"],
        "req_id": "1",
        "op": "subscribe",
    }
    assert [d.get("topic") for d in bybit[1:3]] == ["orderbook.50.BTCUSDT", "tickers.BTCUSDT"]
    assert all(d.get("type") == "snapshot" for d in bybit[1:3])
    assert len(bybit[1]["data"]["b"]) == len(bybit[1]["data"]["a"]) == 50
    assert bybit[3]["op"] == "subscribe"
    assert bybit[3]["req_id"] == "2"


def test_books_are_never_crossed(showcase: list[Record]) -> None:
    state = Replay()
    for record in showcase:
        touched = state.feed(record)
        if touched is not None:
            top = state.top(*touched)
            if top is not None:
                assert top[0] < top[2], (record, top)


def test_ticker_deltas_carry_only_changed_fields(showcase: list[Record]) -> None:
    cache: dict[str, dict[str, str]] = {}
    deltas = 0
    for record in showcase:
        data = record.data
        if not isinstance(data, dict) or not data.get("topic", "").startswith("tickers."):
            continue
        fields = data["data"]
        if data["type"] == "snapshot":
            cache[fields["symbol"]] = dict(fields)
            continue
        cached = cache[fields["symbol"]]
        for key, value in fields.items():
            if key != "symbol":
                assert key in cached
                assert cached[key] != value, (key, value)
                cached[key] = value
        deltas += 1
    assert deltas > 500


def test_ticker_best_prices_follow_the_book(showcase: list[Record]) -> None:
    state = Replay()
    checked = 0
    for record in showcase:
        state.feed(record)
        data = record.data
        if isinstance(data, dict) and data.get("topic") == "tickers.BTCUSDT" and record.ts > at(1):
            top = state.top(BYBIT, "BTCUSDT")
            if "bid1Price" in data["data"] and top is not None:
                # The ticker shows the book as of its own push: within a few ticks of the
                # book stream, which publishes every 20-100 ms.
                assert abs(float(data["data"]["bid1Price"]) - top[0]) / top[0] < 5e-4
                checked += 1
    assert checked > 100


def test_same_seed_same_records_other_seed_other_records() -> None:
    def run(seed: int) -> list[bytes]:
        return [r.to_json() for r in generate_records("faults", seed=seed, duration_s=25)]

    first = run(7)
    assert first == run(7)
    assert first != run(8)


def test_max_records_and_endless_runs() -> None:
    records = list(generate_records("calm", duration_s=float("inf"), max_records=2_000))
    assert len(records) == 2_000


def test_model_snapshots_serve_a_late_client_directly() -> None:
    """What a loopback server does: frames from advance(), snapshots on request."""
    model = MarketModel(["ETHUSDT"], seed=3, start_ms=DEFAULT_START_MS)
    model.advance(DEFAULT_START_MS + 2_345)
    binance, bybit = BinanceReplica(), BybitReplica()
    bybit.on_frame(model.bybit_orderbook_snapshot("ETHUSDT"), model.now_ms)
    body = model.binance_depth_snapshot("ETHUSDT")
    binance.on_rest(body)
    for frame in model.advance(DEFAULT_START_MS + 10_000):
        assert isinstance(frame, Frame)
        if frame.channel == wire.depth_stream("ETHUSDT"):
            binance.on_depth(frame.data["data"], frame.ts)
        elif frame.channel == wire.orderbook_topic("ETHUSDT"):
            bybit.on_frame(frame.data, frame.ts)
    assert binance.state == "synced"
    assert binance.gaps == []
    assert bybit.synced
    assert bybit.gaps == []
    # The rebuilt books equal the model's own, as of its last publish.
    for exchange, replica in ((BINANCE, binance), (BYBIT, bybit)):
        spec = profile("ETHUSDT").spec(exchange)
        book = model.book(exchange, "ETHUSDT")
        for is_bid, side in ((True, replica.bids), (False, replica.asks)):
            levels = wire.wire_levels(spec, book.levels(is_bid, 1000, published=True))
            assert side == {float(p): float(q) for p, q in levels}


def test_time_only_runs_forward_and_symbols_are_checked() -> None:
    model = MarketModel(["BTCUSDT"], seed=1, start_ms=DEFAULT_START_MS)
    model.advance(DEFAULT_START_MS + 100)
    with pytest.raises(ValueError, match="forward"):
        model.advance(DEFAULT_START_MS)
    with pytest.raises(ValueError, match="ETHUSDT"):
        MarketModel(
            ["BTCUSDT"],
            seed=1,
            start_ms=DEFAULT_START_MS,
            scenario=Scenario("x", "", 10, (SequenceGap(1, BYBIT, "ETHUSDT"),)),
        )
    with pytest.raises(ValueError):
        MarketModel([], seed=1, start_ms=DEFAULT_START_MS)
