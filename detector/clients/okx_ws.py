"""OkxWebSocket: channels of OKX's public v5 WebSocket on one connection, kept alive (I/O).

Every message goes to ``on_message(text, recv_ms)`` (or ``on_bytes``) as received, the ``pong``
text included; the pure :class:`~detector.venues.okx.OkxParser` reads them. This class only
subscribes, keeps the connection alive and reconnects, under OKX's rules (docs-v5 "Connect",
"Subscribe", "Notification"):

* "Connection limit: 3 requests per second (based on IP)": connection attempts go through a
  limiter (2 per second by default), shared by every connection of a feed.
* "The total number of 'subscribe'/'unsubscribe'/'login' requests per connection is limited to
  480 times per hour": each connection spends at most ``requests_per_hour`` (default 440) and
  waits when it has spent them. Args are batched (``batch_size`` per request, and at most
  ``max_request_bytes`` of args; OKX allows 64 KB, the 4 KB of its older docs is kept).
* "The connection will break automatically if ... data has not been pushed for more than 30
  seconds": after ``ping_after_s`` (25 s) without a message the text ``ping`` goes out; if
  nothing (not even ``pong``) comes within as long again, the connection is dropped.
* ``{"event": "notice", "code": "64008"}`` warns that the server restarts soon: reconnect now.

Acks name their arg: ``subscribed`` holds the acknowledged args (as ``books:BTC-USDT-SWAP``
keys). OKX refuses args one by one: an error naming an arg (60018 "Wrong URL or channel:books,
instId:X doesn't exist", 64003 VIP-only channel) puts that arg in ``refused``, for good, and the
others of its request are untouched; a refusal that names no arg is retried arg by arg when it
is final, only logged when it may pass (60014 too frequent, 60012 invalid request). Every new
connection subscribes its args again, except the refused ones.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any

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
from detector.clients.ratelimit import WeightLimiter
from detector.errors import ConfigError, FrameError
from detector.models import Exchange, SubscriptionAck
from detector.venues.okx import OkxParser, arg_key, key_arg

log = logging.getLogger(__name__)

PUBLIC_URL = "wss://ws.okx.com:8443/ws/v5/public"
PING_AFTER_S = 25.0  # OKX: "set a timer of N seconds ... where N is less than 30"
REQUESTS_PER_HOUR = 440  # of OKX's 480 per connection: room for what we cannot count
CONNECTS_PER_SECOND = 2  # of OKX's 3 per IP
MAX_REQUEST_BYTES = 4096
# Refusals that will not change on a retry: the arg does not exist, or the channel needs VIP4.
FINAL_REFUSALS = frozenset({"60018", "64003"})
_NOTICE_RECONNECT = "64008"

OnRefused = Callable[[str, str], None]
Sleep = Callable[[float], Awaitable[None]]


def connect_limiter(
    clock: Callable[[], float] = time.time, sleep: Sleep = asyncio.sleep
) -> WeightLimiter:
    """A limiter for connection attempts, to share between the connections of one IP."""
    return WeightLimiter(CONNECTS_PER_SECOND, 1.0, clock=clock, sleep=sleep)


class OkxWebSocket(ReconnectingWebSocket):
    """Args of OKX's public stream on one connection; see the module docstring."""

    exchange = Exchange.OKX

    def __init__(
        self,
        url: str = PUBLIC_URL,
        args: Sequence[Mapping[str, str]] = (),
        on_message: OnMessage = ignore_message,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        ping_after_s: float = PING_AFTER_S,
        batch_size: int = 20,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        requests_per_hour: int = REQUESTS_PER_HOUR,
        connects: WeightLimiter | None = None,
        backoff: Backoff | None = None,
        on_connect: OnConnect | None = None,
        on_refused: OnRefused | None = None,
        open_timeout: float = 10.0,
        on_bytes: OnBytes | None = None,
        compression: str = "none",
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"okx: batch_size must be >= 1, got {batch_size}")
        if ping_after_s <= 0:
            raise ConfigError(f"okx: ping_after_s must be > 0, got {ping_after_s}")
        if requests_per_hour < 1:
            raise ConfigError(f"okx: requests_per_hour must be >= 1, got {requests_per_hour}")
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
        self.keys: tuple[str, ...] = tuple(dict.fromkeys(arg_key(a) for a in args))
        self._key_set = frozenset(self.keys)
        self.on_refused = on_refused
        self.refused: dict[str, str] = {}  # key → why (OKX's words, or ours)
        self.subscribed: set[str] = set()
        self.requests = 0  # subscribe/unsubscribe requests sent on the current connection
        self._sleep_fn = sleep
        self._ping_after_s = ping_after_s
        self._batch_size = batch_size
        self._max_request_bytes = max_request_bytes
        self._requests_per_hour = requests_per_hour
        self._connects = connects if connects is not None else connect_limiter(clock, sleep)
        self._parser = OkxParser()  # reads the event replies; holds no state for them
        self._ids = itertools.count(1)
        self._pending: dict[str, set[str]] = {}  # request id → keys awaiting their ack
        self._outbox: asyncio.Queue[tuple[str, bool]] | None = None  # (text, counted)
        self._heard_at = 0.0  # time.monotonic() of the last message: the pinger counts from it
        self._notice = asyncio.Event()  # the server announced a restart

    # Control

    def drop(self, keys: Iterable[str]) -> None:
        """Carry ``keys`` no more: unsubscribed now if subscribed, never subscribed again."""
        gone = [k for k in dict.fromkeys(keys) if k in self._key_set]
        if not gone:
            return
        self.keys = tuple(k for k in self.keys if k not in gone)
        self._key_set = frozenset(self.keys)
        live = [k for k in gone if k in self.subscribed]
        self.subscribed.difference_update(gone)
        for k in gone:
            self.refused.pop(k, None)
        for pending in self._pending.values():
            pending.difference_update(gone)
        for batch in self._batches(live):
            self._request("unsubscribe", batch)

    def refuse(self, key: str, reason: str) -> None:
        """Never subscribe ``key`` (OKX refused it, or the feed found it is not tradable)."""
        if key in self.refused:
            return
        self.refused[key] = reason
        self.subscribed.discard(key)
        for keys in self._pending.values():
            keys.discard(key)
        log.warning("okx: %s refused: %s", key, reason)
        if self.on_refused is not None:
            try:
                self.on_refused(key, reason)
            except Exception:
                log.exception("okx on_refused failed")

    async def resubscribe(self, key: str) -> None:
        """Unsubscribe and subscribe ``key`` again: a books channel sends a new snapshot."""
        if self._outbox is None or key in self.refused:
            return  # not connected: the next connection subscribes every arg afresh
        self.subscribed.discard(key)
        self._request("unsubscribe", [key])
        self._request("subscribe", [key])

    # Hooks of ReconnectingWebSocket

    async def _open(self) -> ClientConnection:
        await self._connects.acquire(1)
        return await super()._open()

    def _on_open(self) -> None:
        self._outbox = asyncio.Queue()
        self._pending.clear()
        self.subscribed.clear()
        self.requests = 0
        self._heard_at = time.monotonic()
        self._notice = asyncio.Event()
        for batch in self._batches([k for k in self.keys if k not in self.refused]):
            self._request("subscribe", batch)

    def _on_close(self) -> None:
        self._outbox = None

    def _companions(self, ws: ClientConnection) -> Iterable[tuple[str, Coroutine[Any, Any, None]]]:
        assert self._outbox is not None  # set by _on_open, which runs first
        limiter = WeightLimiter(
            self._requests_per_hour, 3600.0, clock=self._clock, sleep=self._sleep_fn
        )
        return [
            ("send", self._sender(ws, self._outbox, limiter)),
            ("ping", self._pinger()),
            ("notice", self._watch_notice()),
        ]

    def _on_data(self, raw: bytes, recv_ms: int) -> None:
        self._heard_at = time.monotonic()  # read by the pinger when it wakes: no wake-up a message
        # Channel data starts with {"arg": ...}; replies carry "event"; "pong" is plain text.
        if raw == b"pong" or raw.startswith(b'{"arg"') or b'"event"' not in raw:
            return
        try:
            data = orjson.loads(raw)
            events = self._parser.parse_ws_message(data, recv_ms)
        except (orjson.JSONDecodeError, FrameError) as exc:
            log.warning("okx: unreadable reply %r: %s", raw[:200], exc)
            return
        if data.get("event") == "notice" and data.get("code") == _NOTICE_RECONNECT:
            log.warning("okx: %s", data.get("msg") or "server restart announced")
            self._notice.set()
        for event in events:
            if isinstance(event, SubscriptionAck):
                self._on_ack(event, str(data.get("code", "")))

    # Requests

    def _batches(self, keys: list[str]) -> Iterable[list[str]]:
        """``keys`` cut into requests of at most batch_size args and max_request_bytes."""
        batch: list[str] = []
        size = 0
        for key in keys:
            n = len(orjson.dumps(key_arg(key))) + 1
            if batch and (len(batch) >= self._batch_size or size + n > self._max_request_bytes):
                yield batch
                batch, size = [], 0
            batch.append(key)
            size += n
        if batch:
            yield batch

    def _request(self, op: str, keys: list[str]) -> None:
        """Queue a subscribe/unsubscribe on the current connection."""
        if self._outbox is None:
            return
        request_id = f"{op[0]}{next(self._ids)}"  # OKX ids: letters and digits, up to 32
        if op == "subscribe":
            self._pending[request_id] = set(keys)
        body = {"id": request_id, "op": op, "args": [key_arg(k) for k in keys]}
        self._outbox.put_nowait((orjson.dumps(body).decode(), True))

    def _on_ack(self, ack: SubscriptionAck, code: str) -> None:
        keys = self._pending.get(ack.request_id) if ack.request_id else None
        if ack.success:
            if ack.topic is None:
                return
            self.subscribed.add(ack.topic)
            for request_id, waiting in list(self._pending.items()):
                waiting.discard(ack.topic)
                if not waiting:
                    del self._pending[request_id]
            return
        final = code in FINAL_REFUSALS
        if ack.topic is not None and ack.topic in self._key_set:
            if final:
                self.refuse(ack.topic, ack.message)
            else:
                log.warning(
                    "okx: %s not subscribed (%s); next connection retries", ack.topic, ack.message
                )
            return
        if keys is None:
            log.warning("okx: error for no pending request: %s", ack.message)
            return
        del self._pending[ack.request_id or ""]
        left = sorted(keys - self.subscribed)
        if not final:
            log.warning("okx: request %s failed (%s); next connection retries", left, ack.message)
        elif len(left) == 1:
            self.refuse(left[0], ack.message)
        else:
            # A refusal of a request that names no arg: ask for each arg alone to find it.
            log.warning("okx: request %s refused (%s); retrying one by one", left, ack.message)
            for key in left:
                self._request("subscribe", [key])

    # Companions of one connection

    async def _sender(
        self, ws: ClientConnection, outbox: asyncio.Queue[tuple[str, bool]], limiter: WeightLimiter
    ) -> None:
        """The connection's only writer, in queue order; requests spend the hourly budget."""
        while True:
            text, counted = await outbox.get()
            if counted:
                await limiter.acquire(1)
                self.requests += 1
            await ws.send(text)

    async def _pinger(self) -> None:
        """``ping`` after ping_after_s of silence; no answer as long again: reconnect.

        It sleeps until ping_after_s after the last message and looks again, instead of being
        woken by every message (at thousands of messages a second, a task and a timer each)."""
        assert self._outbox is not None
        outbox, after = self._outbox, self._ping_after_s
        while True:
            # Sleeping, not an Event: an Event set by each message wakes this task each time.
            while (left := self._heard_at + after - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(left)
            outbox.put_nowait(("ping", False))
            sent = time.monotonic()
            await asyncio.sleep(after)
            if self._heard_at <= sent:
                await self.reconnect(f"no pong within {after:g} s of a ping")
                await asyncio.Event().wait()  # the reconnect ends this connection and cancels us

    async def _watch_notice(self) -> None:
        await self._notice.wait()
        await self.reconnect("server notice 64008: service upgrade")
        await asyncio.Event().wait()  # the reconnect ends this connection and cancels us
