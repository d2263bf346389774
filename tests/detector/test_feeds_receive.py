"""What a feed hands on per message: Binance's and Bybit's bytes as received, for the pipeline's
typed decoding; OKX's decoded (its parser reads the text ``pong``)."""

from __future__ import annotations

from typing import Any

import msgspec

from detector.clients.rest import BinanceClient, OkxClient
from detector.config import DetectorConfig
from detector.engine import Detector
from detector.feeds import BinanceFeed, BybitFeed, OkxFeed
from detector.models import Exchange, Source
from detector.recording import Record

FRAME = b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1}}'
URL = "ws://127.0.0.1:1"


class Ingested:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


def test_binance_and_bybit_frames_go_on_undecoded() -> None:
    ingest = Ingested()
    binance = BinanceFeed(["BTCUSDT"], ingest, BinanceClient(), URL, lambda: 0.0)
    bybit = BybitFeed(["BTCUSDT"], ingest, URL, lambda: 0.0)
    binance.receiver("/public/stream")(FRAME, 7)
    bybit.receiver("/v5/public/linear")(FRAME, 8)
    for (exchange, source, endpoint, data, recv_ms), expected in zip(
        ingest.calls,
        [(Exchange.BINANCE, "/public/stream", 7), (Exchange.BYBIT, "/v5/public/linear", 8)],
        strict=True,
    ):
        assert (exchange, source, endpoint, recv_ms) == (
            expected[0],
            Source.WS,
            expected[1],
            expected[2],
        )
        assert type(data) is msgspec.Raw and bytes(data) == FRAME


def test_okx_frames_go_on_decoded() -> None:
    ingest = Ingested()
    okx = OkxFeed(["BTC-USDT-SWAP"], ingest, OkxClient(), URL, lambda: 0.0)
    okx.receiver("/ws/v5/public")(b"pong", 1)
    okx.receiver("/ws/v5/public")(b'{"event":"subscribe"}', 2)
    assert [call[3] for call in ingest.calls] == ["pong", {"event": "subscribe"}]


def test_a_recording_keeps_json_values_and_broken_text() -> None:
    records: list[Record] = []
    detector = Detector(DetectorConfig(), recorder=records.append, validate_symbols=False)
    detector.ingest(Exchange.BINANCE, Source.WS, "/public/stream", msgspec.Raw(FRAME), 5)
    detector.ingest(Exchange.BINANCE, Source.WS, "/public/stream", msgspec.Raw(b'{"cut'), 6)
    assert [r.data for r in records] == [
        {"stream": "btcusdt@bookTicker", "data": {"e": "bookTicker", "u": 1}},
        '{"cut',
    ]
    assert all(r.to_json().startswith(b'{"ts":') for r in records)
