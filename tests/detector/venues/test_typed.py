"""The typed decoding of the hot frames gives exactly what the dict path gives.

``parse_ws_raw`` (msgspec, from the bytes) must return the same events as ``parse_ws_message``
(``orjson.loads`` then dicts) for every frame, real or broken, and the same error for a frame
that is no good: the fast path may only ever take what the dict path takes, with the same values.
"""

from __future__ import annotations

import copy
import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from detector.errors import FrameError
from detector.models import Event, Exchange
from detector.recording import parse_record
from detector.venues import make_parser
from detector.venues.base import VenueParser
from tests.conftest import load_jsonl

ROOT = Path(__file__).parents[3]
TYPED = (Exchange.BINANCE, Exchange.BYBIT)


def _outcome(call: Callable[[], list[Event]]) -> tuple[str, Any]:
    try:
        return "events", call()
    except FrameError as exc:
        return "error", (type(exc).__name__, str(exc))


def _both(parser: VenueParser, other: VenueParser, frame: bytes) -> None:
    """``frame`` through the typed path of one parser and the dict path of a twin."""
    typed = _outcome(lambda: parser.parse_ws_raw(frame, 5))
    plain = _outcome(lambda: other.parse_ws_message(orjson.loads(frame), 5))
    assert typed == plain, frame[:300]


def _recorded(exchange: Exchange) -> Iterator[bytes]:
    """The WS payloads of ``exchange`` in the golden recordings, as received (first 3,000)."""
    count = 0
    for path in (ROOT / "samples" / "sample.jsonl.gz", ROOT / "tests/golden/regression.jsonl.gz"):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            record = parse_record(line, lazy=True)
            if record.exchange is exchange and record.source.value == "ws":
                yield bytes(record.data)
                count += 1
                if count % 3000 == 0:
                    break


@pytest.mark.parametrize("exchange", TYPED)
def test_recorded_frames_give_the_same_events(exchange: Exchange) -> None:
    typed, plain = make_parser(exchange), make_parser(exchange)
    frames = list(_recorded(exchange))
    assert len(frames) >= 3000
    for frame in frames:
        _both(typed, plain, frame)


REAL = {
    Exchange.BINANCE: [
        "binance_usdm_ws_depth100ms_combined_2021-07-22.jsonl",
        "binance_usdm_ws_bookTicker_combined_2021-07-22.jsonl",
        "binance_usdm_ws_aggTrade_combined_2021-07-22.jsonl",
        "binance_usdm_market_ws_ack_miniTicker_ps_st_2026-08-12.jsonl",
    ],
    Exchange.BYBIT: [
        "bybit_v5_linear_orderbook50_BTCUSDT_snapshot_delta_2026-08-12.jsonl",
        "bybit_v5_linear_subscribe_ack_and_publicTrade_BTCUSDT_2026-08-12.jsonl",
        "bybit_v5_linear_tickers_BTCUSDT_snapshot_delta_2026-08-12.jsonl",
        "bybit_v5_linear_data_before_ack_kline_2026-08-12.jsonl",
    ],
}


@pytest.mark.parametrize("exchange", TYPED)
def test_real_exchange_frames_give_the_same_events(exchange: Exchange) -> None:
    typed, plain = make_parser(exchange), make_parser(exchange)
    for name in REAL[exchange]:
        for frame in load_jsonl(name):
            _both(typed, plain, orjson.dumps(frame))


def _mutations(frame: Any) -> Iterator[Any]:
    """``frame`` with one value at a time replaced by something of another kind."""
    bad_values: list[Any] = [
        None,
        "",
        "x",
        "12",
        "nan",
        "inf",
        "-1",
        "1e400",
        " 1.5",
        True,
        1.5,
        -3,
        2**63 + 5,
        [],
        {},
    ]

    def walk(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        yield path
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, (*path, key))
        elif isinstance(node, list):
            for i, value in enumerate(node[:2]):
                yield from walk(value, (*path, i))

    for path in walk(frame, ()):
        if not path:
            continue
        for value in bad_values:
            changed = copy.deepcopy(frame)
            node = changed
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = value
            yield changed
        changed = copy.deepcopy(frame)
        node = changed
        for step in path[:-1]:
            node = node[step]
        if isinstance(node, dict):
            del node[path[-1]]
            yield changed


@pytest.mark.parametrize("exchange", TYPED)
def test_broken_frames_give_the_same_error_or_events(exchange: Exchange) -> None:
    """Every field of each hot frame kind, replaced by a value of another kind or removed."""
    frames = [load_jsonl(name)[0] for name in REAL[exchange][:2]]
    if exchange is Exchange.BINANCE:
        frames.append(load_jsonl(REAL[exchange][2])[0])  # aggTrade
    else:
        frames.append(load_jsonl(REAL[exchange][1])[1])  # publicTrade (the first is the ack)
    checked = 0
    for frame in frames:
        for changed in _mutations(frame):
            typed, plain = make_parser(exchange), make_parser(exchange)
            _both(typed, plain, orjson.dumps(changed))
            checked += 1
    assert checked > 300


def test_a_payload_that_is_no_json_is_a_malformed_frame() -> None:
    for exchange in Exchange:
        with pytest.raises(FrameError, match="not JSON"):
            make_parser(exchange).parse_ws_raw(b'{"stream": ', 1)


def test_a_lazy_recording_line_keeps_its_payload_byte_for_byte() -> None:
    line = (
        b'{"ts":5,"exchange":"binance","source":"ws","endpoint":"/public/stream",'
        b'"data":{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","b":[["1.10","2"]]}}}'
    )
    record = parse_record(line, lazy=True)
    assert type(record.data) is msgspec.Raw
    assert record.to_json() == line
    assert parse_record(line).to_json() == line
    eager = parse_record(b'{"ts":5,"exchange":"binance","source":"ws","endpoint":"/x","data":1}')
    assert eager.data == 1
    # A bad line is refused with the same reason, lazily or not.
    for bad in (
        b'{"ts":true,"exchange":"binance","source":"ws","endpoint":"/","data":1}',
        b'{"ts":1,"exchange":"kraken","source":"ws","endpoint":"/","data":1}',
        b"[1]",
    ):
        with pytest.raises(Exception) as lazy_error:
            parse_record(bad, 3, lazy=True)
        with pytest.raises(Exception) as eager_error:
            parse_record(bad, 3)
        assert str(lazy_error.value) == str(eager_error.value)
