"""The exchanges' WebSocket clients: Binance combined streams and Bybit v5 public linear topics.

Both keep one connection open with :class:`~detector.clients.connection.ReconnectingWebSocket`
and hand every message, as received, to ``on_message(text, recv_ms)`` (or ``on_bytes``). The
names of streams and topics come from the pure venue modules
(``detector.venues.binance.depth_stream``, ``detector.venues.bybit.orderbook_topic``, ...).

**Binance.** Since 2026-04-23 streams are routed by path and one connection serves one path:
``public`` (``@depth``, ``@bookTicker``, ``@trade``) or ``market`` (``@aggTrade``, ``@markPrice``,
``@kline_*``, ``@ticker``, ``@miniTicker``). A stream on the wrong path delivers nothing, silently,
so the constructor refuses it. Streams are named in the URL (``/public/stream?streams=a/b``):
nothing is sent, so the limit of 10 incoming messages per second never applies. A connection
carries at most 200 streams (the house limit; Binance's USDⓈ-M docs allow 1,024): more raise
:class:`ConfigError`; split them with :func:`split_streams` or :func:`shard`, one client per chunk.

**Bybit.** Bybit refuses a whole subscribe request when one of its topics is bad, so topics go
out in small batches; a refused batch is retried topic by topic to name the culprit
(``on_refused``, the ``refused`` set) while the good topics get subscribed. Every new connection
subscribes every topic again, except the refused ones. ``{"op": "ping"}`` goes out every
``ping_interval_s`` (Bybit cuts silent connections). Acks and pongs reach ``on_message`` too; data
may come before its ack. Bybit's v5 docs (``/docs/v5/ws/connect``) cap the topics of one public
connection at 21,000 characters of ``args`` in all: feeds cut them with :func:`shard` well under
that (:data:`BYBIT_MAX_TOPIC_CHARS`, :data:`BYBIT_MAX_TOPICS`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Literal

import orjson
from websockets.asyncio.client import ClientConnection

from detector.clients.backoff import Backoff
from detector.clients.connection import (
    OnBytes,
    OnConnect,
    OnMessage,
    ReconnectingWebSocket,
    ignore_message,
)
from detector.errors import ConfigError, FrameError
from detector.models import Exchange, SubscriptionAck
from detector.venues.bybit import BybitParser

log = logging.getLogger(__name__)

# Binance

Path = Literal["public", "market"]

MAX_STREAMS_PER_CONNECTION = 200
# Bybit: topics' characters per connection (the documented limit is 21,000) and topics per
# connection (a bound on the data rate one connection carries: 100 symbols of 3 topics).
BYBIT_MAX_TOPIC_CHARS = 20_000
BYBIT_MAX_TOPICS = 300
# Binance closes every connection after 24 h; leave an hour earlier.
DEFAULT_MAX_AGE_S = 23 * 3600.0

_MARKET_KINDS = (
    "aggTrade",
    "markPrice",
    "kline_",
    "continuousKline_",
    "ticker",
    "miniTicker",
    "forceOrder",
    "compositeIndex",
    "contractInfo",
    "assetIndex",
)


def stream_path(stream: str) -> Path | None:
    """The path that serves ``stream`` ("public" or "market"); None for a kind we do not know."""
    if stream.startswith("!"):  # !markPrice@arr, !bookTicker, !miniTicker@arr
        kind = stream[1:].split("@", 1)[0]
    else:
        parts = stream.split("@")
        kind = parts[1] if len(parts) > 1 else ""
    if kind in ("bookTicker", "trade") or kind.startswith("depth"):
        return "public"
    if any(kind == k or (k.endswith("_") and kind.startswith(k)) for k in _MARKET_KINDS):
        return "market"
    return None


def split_streams(
    streams: Sequence[str], per_connection: int = MAX_STREAMS_PER_CONNECTION
) -> list[list[str]]:
    """``streams`` grouped by path, then cut into chunks of at most ``per_connection``.

    One :class:`BinanceWebSocket` per chunk; streams of unknown kind go with ``public``.
    """
    by_path: dict[str, list[str]] = {"public": [], "market": []}
    for stream in dict.fromkeys(streams):
        by_path[stream_path(stream) or "public"].append(stream)
    return [
        group[i : i + per_connection]
        for group in by_path.values()
        for i in range(0, len(group), per_connection)
    ]


def shard(
    symbols: Sequence[str],
    names: Callable[[str], Sequence[str]],
    max_names: int,
    max_chars: int | None = None,
) -> list[list[str]]:
    """The streams or topics of ``symbols`` (``names(symbol)`` each), cut into connections of
    at most ``max_names`` names and, if given, ``max_chars`` characters of names in all.

    A symbol's names are never split across connections: a book and the stream that proves it
    alive (Binance bookTicker) share one, and a dropped connection breaks whole symbols only.
    """
    chunks: list[list[str]] = []
    chunk: list[str] = []
    chars = 0
    for symbol in dict.fromkeys(symbols):
        own = list(dict.fromkeys(names(symbol)))
        size = sum(len(n) for n in own)
        if len(own) > max_names or (max_chars is not None and size > max_chars):
            raise ConfigError(f"{symbol}: {len(own)} names do not fit on one connection")
        if chunk and (
            len(chunk) + len(own) > max_names
            or (max_chars is not None and chars + size > max_chars)
        ):
            chunks.append(chunk)
            chunk, chars = [], 0
        chunk.extend(own)
        chars += size
    if chunk:
        chunks.append(chunk)
    return chunks


class BinanceWebSocket(ReconnectingWebSocket):
    """Combined streams of one routed path on one connection; raw text to ``on_message``.

    Every message is ``{"stream": name, "data": {...}}``, delivered as received. Reconnects with
    backoff after a failure and at once before ``max_age_s`` (Binance's 24 h limit); after a
    reconnect the depth streams need a new REST snapshot: ``on_connect`` tells the feed.
    """

    exchange = Exchange.BINANCE

    def __init__(
        self,
        base_url: str = "wss://fstream.binance.com",
        path: Path = "public",
        streams: Sequence[str] = (),
        on_message: OnMessage = ignore_message,
        *,
        clock: Callable[[], float] = time.time,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        on_connect: OnConnect | None = None,
        on_bytes: OnBytes | None = None,
        compression: str = "none",
    ) -> None:
        self.path: Path = path
        self.streams: tuple[str, ...] = tuple(dict.fromkeys(streams))
        _check_streams(path, self.streams)
        self._base_url = base_url.rstrip("/")
        url = self._stream_url()
        super().__init__(
            url,
            on_message,
            clock=clock,
            backoff=backoff,
            open_timeout=open_timeout,
            max_age_s=max_age_s,
            on_connect=on_connect,
            on_bytes=on_bytes,
            compression=compression,
        )

    def _stream_url(self) -> str:
        return f"{self._base_url}/{self.path}/stream?streams=" + "/".join(self.streams)

    def drop(self, streams: Iterable[str]) -> None:
        """Carry ``streams`` no more: the next connection (they are in its URL) leaves them out;
        the current one may deliver them until then (they are ignored)."""
        gone = set(streams)
        self.streams = tuple(s for s in self.streams if s not in gone)
        self.url = self._stream_url()


def _check_streams(path: str, streams: Sequence[str]) -> None:
    if path not in ("public", "market"):
        raise ConfigError(f"binance: path must be 'public' or 'market', got {path!r}")
    if not streams:
        raise ConfigError("binance: a WebSocket needs at least one stream")
    if len(streams) > MAX_STREAMS_PER_CONNECTION:
        raise ConfigError(
            f"binance: {len(streams)} streams on one connection, at most "
            f"{MAX_STREAMS_PER_CONNECTION}: split them with split_streams()"
        )
    wrong = [s for s in streams if (p := stream_path(s)) is not None and p != path]
    if wrong:
        raise ConfigError(
            f"binance: streams {', '.join(wrong)} are not served on /{path} "
            "(they would deliver nothing)"
        )


# Bybit

OnRefused = Callable[[str, str], None]


class BybitWebSocket(ReconnectingWebSocket):
    """Topics of the Bybit v5 public linear stream on one connection; see the module docstring.

    ``subscribed`` holds the topics acknowledged on the current connection, ``refused`` those
    Bybit refused (kept across reconnects, never subscribed again).
    """

    exchange = Exchange.BYBIT

    def __init__(
        self,
        url: str = "wss://stream.bybit.com/v5/public/linear",
        topics: Sequence[str] = (),
        on_message: OnMessage = ignore_message,
        *,
        clock: Callable[[], float] = time.time,
        ping_interval_s: float = 20.0,
        batch_size: int = 10,
        backoff: Backoff | None = None,
        on_connect: OnConnect | None = None,
        on_refused: OnRefused | None = None,
        open_timeout: float = 10.0,
        on_bytes: OnBytes | None = None,
        compression: str = "none",
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"bybit: batch_size must be >= 1, got {batch_size}")
        if ping_interval_s <= 0:
            raise ConfigError(f"bybit: ping_interval_s must be > 0, got {ping_interval_s}")
        super().__init__(
            url,
            on_message,
            clock=clock,
            backoff=backoff,
            open_timeout=open_timeout,
            on_connect=on_connect,
            on_bytes=on_bytes,
            compression=compression,
        )
        self.topics: tuple[str, ...] = tuple(dict.fromkeys(topics))
        self.on_refused = on_refused
        self.refused: set[str] = set()
        self.subscribed: set[str] = set()
        self._ping_interval_s = ping_interval_s
        self._batch_size = batch_size
        self._parser = BybitParser()  # reads the acks; stateless for op replies
        self._req_ids = itertools.count(1)
        self._pending: dict[str, tuple[str, ...]] = {}  # req_id → topics awaiting their ack
        self._outbox: asyncio.Queue[str] | None = None  # the current connection's sends

    def drop(self, topics: Iterable[str]) -> None:
        """Carry ``topics`` no more: unsubscribed now if connected, never subscribed again."""
        gone = [t for t in dict.fromkeys(topics) if t in self.topics]
        if not gone:
            return
        self.topics = tuple(t for t in self.topics if t not in gone)
        live = [t for t in gone if t in self.subscribed]
        self.subscribed.difference_update(gone)
        self.refused.difference_update(gone)
        for i in range(0, len(live), self._batch_size):
            self._send("unsubscribe", live[i : i + self._batch_size])

    async def resubscribe(self, topic: str) -> None:
        """Unsubscribe and subscribe ``topic`` again, for a fresh snapshot after a gap."""
        if self._outbox is None or topic in self.refused:
            return  # not connected: the next connection subscribes every topic afresh
        self.subscribed.discard(topic)
        self._send("unsubscribe", [topic])
        self._subscribe((topic,))

    # Hooks of ReconnectingWebSocket

    def _on_open(self) -> None:
        self._outbox = asyncio.Queue()
        self._pending.clear()
        self.subscribed.clear()
        topics = [t for t in self.topics if t not in self.refused]
        for i in range(0, len(topics), self._batch_size):
            self._subscribe(tuple(topics[i : i + self._batch_size]))

    def _on_close(self) -> None:
        self._outbox = None

    def _companions(self, ws: ClientConnection) -> Iterable[tuple[str, Coroutine[Any, Any, None]]]:
        assert self._outbox is not None  # set by _on_open, which runs first
        return [("send", self._sender(ws, self._outbox)), ("ping", self._pinger())]

    def _on_data(self, data: bytes, recv_ms: int) -> None:
        # Data frames start with {"topic": ...}; only op replies carry an "op" key. The prefix
        # test spares the search through every data frame.
        if data.startswith(b'{"topic"') or b'"op"' not in data:
            return
        try:
            events = self._parser.parse_ws_message(orjson.loads(data), recv_ms)
        except (orjson.JSONDecodeError, FrameError) as exc:
            log.warning("bybit: unreadable reply %r: %s", data[:200], exc)
            return
        for event in events:
            if isinstance(event, SubscriptionAck):
                self._on_ack(event)

    # Subscriptions

    def _subscribe(self, topics: tuple[str, ...]) -> None:
        self._pending[self._send("subscribe", list(topics))] = topics

    def _send(self, op: str, args: list[str] | None = None) -> str:
        """Queue a request on the current connection; returns its req_id."""
        req_id = f"{op}-{next(self._req_ids)}"
        request: dict[str, Any] = {"req_id": req_id, "op": op}
        if args is not None:
            request["args"] = args
        if self._outbox is not None:
            self._outbox.put_nowait(orjson.dumps(request).decode())
        return req_id

    def _on_ack(self, ack: SubscriptionAck) -> None:
        topics = self._pending.pop(ack.request_id, None) if ack.request_id else None
        if topics is None and ack.topic:
            # A reply without our req_id: find the request by the topic it names.
            for req_id, batch in self._pending.items():
                if ack.topic in batch:
                    topics = self._pending.pop(req_id)
                    break
        if topics is None:
            if not ack.success:
                log.warning("bybit: refusal of no pending request: %s", ack.message)
            return
        if ack.success:
            self.subscribed.update(topics)
        elif len(topics) > 1:
            # One bad topic fails its whole request: find it by asking for each one alone.
            log.warning("bybit: batch %s refused (%s); retrying one by one", topics, ack.message)
            for topic in topics:
                self._subscribe((topic,))
        elif "already subscribed" in ack.message:
            self.subscribed.update(topics)
        else:
            topic = topics[0]
            self.refused.add(topic)
            log.warning("bybit: topic %s refused: %s", topic, ack.message)
            if self.on_refused is not None:
                try:
                    self.on_refused(topic, ack.message)
                except Exception:
                    log.exception("bybit on_refused failed")

    # Companions of one connection

    async def _sender(self, ws: ClientConnection, outbox: asyncio.Queue[str]) -> None:
        """The connection's only writer: requests go out in the order they were queued."""
        while True:
            request = await outbox.get()
            await ws.send(request)  # a str: Bybit expects text frames

    async def _pinger(self) -> None:
        # An application-level ping: Bybit cuts connections silent for 10 minutes.
        while True:
            await asyncio.sleep(self._ping_interval_s)
            self._send("ping")
