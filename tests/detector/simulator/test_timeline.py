"""The pre-generated market: frames framed for the wire, in order, with snapshots to sync from."""

from __future__ import annotations

import orjson
import pytest

from detector.models import Exchange
from detector.simulator.scenarios import Scenario
from detector.simulator.timeline import (
    FRAME,
    REST_SNAPSHOT,
    VENUE_INDEX,
    WS_SNAPSHOT,
    Timeline,
    build_timeline,
    frame_payload,
    ws_text_frame,
)

SYMBOLS = ("BTCUSDT", "ETHUSDT")
CALM = Scenario("calm", "nothing happens", 4.0)


@pytest.fixture(scope="module")
def timeline() -> Timeline:
    return build_timeline(CALM, symbols=SYMBOLS, venues=tuple(Exchange), snapshot_every_ms=500)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_a_frame_carries_its_payload_whole(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    frame = ws_text_frame(payload)
    assert frame[0] == 0x81  # FIN, text, no RSV bits
    assert frame_payload(frame) == payload
    header = len(frame) - size
    assert header == (2 if size < 126 else 4 if size < 65536 else 10)


def test_a_compressed_frame_sets_rsv1() -> None:
    assert ws_text_frame(b"abc", rsv1=True)[0] == 0xC1


def test_entries_are_in_time_order_with_snapshots_every_interval(timeline: Timeline) -> None:
    assert timeline.times == sorted(timeline.times)
    assert timeline.end_ms - timeline.start_ms >= 4000
    ws = [t for t, k in zip(timeline.times, timeline.kinds, strict=True) if k == WS_SNAPSHOT]
    t0 = timeline.start_ms
    assert sorted(set(ws))[:3] == [t0, t0 + 500, t0 + 1000]
    # Binance depth: every book at the start, then each every 500 ms, the two 250 ms apart.
    depth = {
        symbol: [
            t
            for t, k, key in zip(timeline.times, timeline.kinds, timeline.keys, strict=True)
            if k == REST_SNAPSHOT and key == symbol
        ][:3]
        for symbol in SYMBOLS
    }
    assert depth == {"BTCUSDT": [t0, t0 + 500, t0 + 1000], "ETHUSDT": [t0, t0 + 250, t0 + 750]}
    snapshot_topics = {
        key for key, kind in zip(timeline.keys, timeline.kinds, strict=True) if kind == WS_SNAPSHOT
    }
    assert snapshot_topics == {
        "orderbook.50.BTCUSDT",
        "tickers.BTCUSDT",
        "orderbook.50.ETHUSDT",
        "tickers.ETHUSDT",
        "books:BTC-USDT-SWAP",
        "tickers:BTC-USDT-SWAP",
        "funding-rate:BTC-USDT-SWAP",
        "books:ETH-USDT-SWAP",
        "tickers:ETH-USDT-SWAP",
        "funding-rate:ETH-USDT-SWAP",
    }
    assert timeline.frames == sum(1 for k in timeline.kinds if k == FRAME)
    assert timeline.frames_per_s == pytest.approx(timeline.frames / timeline.duration_s)


def test_frames_are_the_exchanges_payloads_keyed_by_stream(timeline: Timeline) -> None:
    seen: dict[str, dict[str, object]] = {}
    for kind, venue, key, data in zip(
        timeline.kinds, timeline.venue_of, timeline.keys, timeline.data, strict=True
    ):
        if kind != FRAME:
            continue
        body = orjson.loads(frame_payload(data))
        if venue == VENUE_INDEX[Exchange.BINANCE]:
            assert body["stream"] == key  # a combined-stream message of its own stream
        elif venue == VENUE_INDEX[Exchange.BYBIT]:
            assert body["topic"] == key
        else:
            assert f"{body['arg']['channel']}:{body['arg']['instId']}" == key
        seen.setdefault(key, body)
    assert "btcusdt@depth@100ms" in seen
    assert "btcusdt@markPrice@1s" in seen  # what the detector subscribes, every mark
    assert "orderbook.50.BTCUSDT" in seen


def test_a_binance_snapshot_bridges_the_next_diff(timeline: Timeline) -> None:
    """Futures: the first event after the snapshot has U <= lastUpdateId <= u."""
    entries = list(zip(timeline.kinds, timeline.keys, timeline.data, strict=True))
    checked = 0
    for i, (kind, key, data) in enumerate(entries):
        if kind != REST_SNAPSHOT or key != "BTCUSDT":
            continue
        last_id = orjson.loads(data)["lastUpdateId"]
        for later_kind, later_key, later in entries[i + 1 :]:
            if later_kind == FRAME and later_key == "btcusdt@depth@100ms":
                diff = orjson.loads(frame_payload(later))["data"]
                assert diff["U"] <= last_id <= diff["u"]
                checked += 1
                break
    assert checked >= 5


def test_the_same_arguments_give_the_same_timeline() -> None:
    def build() -> Timeline:
        return build_timeline(CALM, symbols=SYMBOLS, duration_s=1.0)

    first, second = build(), build()
    assert first.data == second.data
    assert first.times == second.times


def test_max_frames_bounds_the_market() -> None:
    small = build_timeline(CALM, symbols=SYMBOLS, max_frames=50, snapshot_every_ms=100)
    assert 50 <= small.frames < 50 + 100  # stops at the end of the interval that reached it
    assert small.venues == (Exchange.BINANCE, Exchange.BYBIT)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"snapshot_every_ms": 0}, "snapshot_every_ms"),
        ({"depth_every_ms": -1}, "depth_every_ms"),
        ({"depth_limit": 0}, "depth_limit"),
        ({"max_frames": 0}, "max_frames"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_timeline(CALM, symbols=SYMBOLS, **kwargs)  # type: ignore[arg-type]
