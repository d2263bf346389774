"""Subscriptions of the whole market spread over connections within each venue's limits."""

from __future__ import annotations

import urllib.parse

import pytest

from detector.clients.rest import BinanceClient
from detector.clients.ws import (
    BYBIT_MAX_TOPIC_CHARS,
    BYBIT_MAX_TOPICS,
    MAX_STREAMS_PER_CONNECTION,
    BybitWebSocket,
    shard,
)
from detector.errors import ConfigError
from detector.feeds import BinanceFeed, BybitFeed
from detector.venues.binance import book_ticker_stream, depth_stream
from detector.venues.bybit import orderbook_topic
from tests.conftest import load_json

# The real Bybit USDT perpetuals of 2026-08-09 (their names are as long as they come).
REAL_BYBIT = [
    item["symbol"]
    for item in load_json("bybit_v5_rest_instruments_info_linear_2026-08-09.json")["result"]["list"]
    if item["quoteCoin"] == "USDT" and item["contractType"] == "LinearPerpetual"
]


def ignore(*_args: object) -> None:
    return None


def clock() -> float:
    return 1_700_000_000.0


def test_a_symbols_names_stay_on_one_connection_within_the_limits() -> None:
    symbols = [f"COIN{i}USDT" for i in range(250)]
    chunks = shard(symbols, lambda s: (depth_stream(s), book_ticker_stream(s)), 200)
    assert [len(c) for c in chunks] == [200, 200, 100]
    for chunk in chunks:
        names = {n.split("@")[0] for n in chunk}
        assert all(f"{n}@depth@100ms" in chunk and f"{n}@bookTicker" in chunk for n in names)
    flat = [n for chunk in chunks for n in chunk]
    assert flat == [n for s in symbols for n in (depth_stream(s), book_ticker_stream(s))]


def test_characters_bound_a_connection_too() -> None:
    chunks = shard(["AUSDT", "BUSDT", "CUSDT"], lambda s: (s * 2,), 100, max_chars=25)
    assert chunks == [["AUSDTAUSDT", "BUSDTBUSDT"], ["CUSDTCUSDT"]]
    with pytest.raises(ConfigError, match="LONGUSDT: 3 names do not fit on one connection"):
        shard(["LONGUSDT"], lambda s: (s, s + "1", s + "2"), 2)


def test_binance_streams_of_the_whole_market() -> None:
    symbols = [f"COIN{i}USDT" for i in range(420)]
    feed = BinanceFeed(symbols, ignore, BinanceClient("http://127.0.0.1:9"), "ws://x", clock)
    assert (len(feed.public), len(feed.market)) == (5, 5)  # 100 symbols a connection
    for conn in feed.connections:
        assert 0 < len(conn.streams) <= MAX_STREAMS_PER_CONNECTION
    public = [s for conn in feed.public for s in conn.streams]
    assert len(public) == len(set(public)) == 840
    assert "/public/stream?streams=" in feed.public[0].url
    assert "/market/stream?streams=" in feed.market[0].url


def test_bybit_topics_of_the_real_market() -> None:
    assert len(REAL_BYBIT) > 600
    feed = BybitFeed(REAL_BYBIT, ignore, "ws://x", clock, 50)
    topics = [t for conn in feed.ws for t in conn.topics]
    assert len(topics) == len(set(topics)) == 3 * len(REAL_BYBIT)
    for conn in feed.ws:
        assert len(conn.topics) <= BYBIT_MAX_TOPICS
        assert sum(len(t) for t in conn.topics) <= BYBIT_MAX_TOPIC_CHARS < 21_000
    # Each book's topic is repaired on the connection that carries it.
    last = REAL_BYBIT[-1]
    conn = feed._conn_of[orderbook_topic(last, 50)]
    assert isinstance(conn, BybitWebSocket) and conn is feed.ws[-1]
    assert f"publicTrade.{last}" in conn.topics


@pytest.mark.parametrize("per", [0, 101])
def test_symbols_per_connection_is_bounded_by_the_venue(per: int) -> None:
    with pytest.raises(ConfigError, match=r"symbols_per_connection must be in 1\.\.100"):
        BybitFeed(["BTCUSDT"], ignore, "ws://x", clock, 50, symbols_per_connection=per)


def test_fewer_symbols_per_connection_shard_a_small_market() -> None:
    rest = BinanceClient("http://127.0.0.1:9")
    binance = BinanceFeed(
        ["BTCUSDT", "ETHUSDT"], ignore, rest, "ws://x", clock, symbols_per_connection=1
    )
    assert [c.streams for c in binance.public] == [
        ("btcusdt@depth@100ms", "btcusdt@bookTicker"),
        ("ethusdt@depth@100ms", "ethusdt@bookTicker"),
    ]
    query = urllib.parse.urlparse(binance.market[1].url).query
    assert query == "streams=ethusdt@markPrice@1s/ethusdt@aggTrade"
