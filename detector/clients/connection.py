"""ReconnectingWebSocket: one WebSocket kept open forever; every message goes to a callback.

The venue clients (:mod:`detector.clients.ws`) add the URL, the subscriptions and the heartbeats.
This class only connects, pumps messages to ``on_message(text, recv_ms)`` (or, given
``on_bytes``, to ``on_bytes(payload, recv_ms)`` undecoded: orjson reads bytes, so no str copy is
made), and reconnects: after a failure with exponential backoff and full jitter (reset once a
connection delivers a message), at once after :meth:`reconnect` or when the connection reaches
``max_age_s``. Nothing but cancellation ends :meth:`run` before :meth:`stop`.

A message is handed on from the connection's ``data_received`` as soon as its frame is complete
(:class:`_DirectConnection`): no queue and no ``await`` per message. websockets does the
handshake, the pings, pongs and close, and every unusual frame; the plain data frames of an open
connection are cut out of the received bytes here, which halves the receive path's CPU per
message (``scripts/ws_bench.py``: 12.5 → 6.3 µs). A fragmented, compressed or faulty frame turns
the connection over to websockets' parser (and a fragmented message to its queue), in order,
for good.

``compression`` is ``"none"`` or ``"deflate"`` (permessage-deflate offered to the server):
decompressing costs the client CPU on every message; the bytes it saves matter only on a slow
link (see the README's figures).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, ClassVar, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidURI,
    WebSocketException,
)
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, Protocol, State
from websockets.streams import StreamReader
from websockets.uri import parse_uri

from detector.clients.backoff import Backoff
from detector.config import WS_COMPRESSIONS, WsCompression
from detector.errors import ConfigError
from detector.models import Exchange

log = logging.getLogger(__name__)

_T = TypeVar("_T")

TASK_PREFIX = "arbwatch-ws:"  # the names of the tasks a client starts begin with it

OnMessage = Callable[[str, int], None]
OnBytes = Callable[[bytes, int], None]
OnConnect = Callable[[], None]

# Protocol-level keepalive of the websockets library: it pings every 20 s and answers the
# server's pings (Binance pings every 3 min and cuts a connection that does not pong).
_PING_INTERVAL_S = 20.0
_PING_TIMEOUT_S = 20.0
# A close handshake waits this long for the server; a silent connection is likely dead.
_CLOSE_TIMEOUT_S = 2.0
_MAX_MESSAGE_BYTES = 16 * 2**20  # a Bybit orderbook.1000 snapshot stays far below this


def ignore_message(text: str, recv_ms: int) -> None:
    """The default ``on_message``: drop the message."""


def check_compression(value: str) -> WsCompression:
    """``value`` if it is a known compression, else :class:`ConfigError` naming the choices."""
    if value not in WS_COMPRESSIONS:
        choices = ", ".join(WS_COMPRESSIONS)
        raise ConfigError(f"WebSocket compression must be one of {choices}, got {value!r}")
    return value  # type: ignore[return-value]


class _DirectConnection(ClientConnection):
    """websockets' client connection, handing each whole single-frame data message to
    ``deliver(payload)`` as soon as it is received. Until ``deliver`` is set (the session's hooks
    have run) messages are ``held``, in order. The first fragment of a fragmented message
    clears ``direct``: it and every message after it go through websockets' queue (``recv``).

    Once the handshake is done and websockets' parser waits for the next frame with nothing
    buffered, :meth:`data_received` reads the frames itself (:meth:`_take`): a plain data frame
    (FIN, text or binary, no RSV bit, unmasked, within ``max_size``) is cut out of the received
    bytes and delivered; a control frame is handed to websockets whole (it answers pings, reads
    pongs and the close handshake), so its parser stays at a frame boundary; anything else (a
    fragment, a compressed or masked frame, a frame over the size limit) and everything after
    it goes to websockets as received, for good. websockets' generator-based frame parser costs
    more per message than the rest of the receive path (see ``scripts/ws_bench.py``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliver: Callable[[bytes], None] | None = None
        self.held: list[bytes] = []
        self.direct = True
        self.reading = False  # data_received reads the frames (after the handshake)
        self._partial = bytearray()  # the received start of a frame not yet complete

    def data_received(self, data: bytes) -> None:
        if self.reading:
            self._take(data)
            return
        super().data_received(data)
        self.reading = self.direct and _at_frame_boundary(self.protocol)

    def _take(self, data: bytes) -> None:
        buf: bytes | bytearray = data
        if self._partial:  # grown in place: a large frame in many reads is copied once
            self._partial += data
            buf = self._partial
        end_of_data = len(buf)
        limit = self.protocol.max_message_size
        pos = 0
        while end_of_data - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                if end_of_data < pos + 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif length == 127:
                if end_of_data < pos + 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            opcode = first & 0x0F
            plain = first & 0xF0 == 0x80 and not second & 0x80  # FIN, no RSV bit, unmasked
            if plain and (opcode == 1 or opcode == 2) and (limit is None or length <= limit):
                end = start + length
                if end > end_of_data:
                    break
                payload = buf[start:end]
                self._hand_on(payload if type(payload) is bytes else bytes(payload))
                pos = end
            elif plain and opcode >= 8 and length <= 125:
                end = start + length
                if end > end_of_data:
                    break
                super().data_received(bytes(buf[pos:end]))  # ping, pong, close: websockets'
                pos = end
                if not _at_frame_boundary(self.protocol):  # closing, or closed
                    self._give_up(buf[pos:])
                    return
            else:
                self._give_up(buf[pos:])
                return
        if pos == 0 and buf is self._partial:
            return  # still the one incomplete frame
        self._partial = bytearray(buf[pos:]) if pos < end_of_data else bytearray()

    def _give_up(self, rest: bytes | bytearray) -> None:
        """Hand ``rest`` and everything received after it to websockets."""
        self.reading = False
        self._partial = bytearray()
        if rest:
            super().data_received(bytes(rest))

    def _hand_on(self, payload: bytes) -> None:
        if self.deliver is None:
            self.held.append(payload)
        else:
            self.deliver(payload)

    def process_event(self, event: Event) -> None:
        if self.direct and type(event) is Frame:
            opcode = event.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if not event.fin:
                    self.direct = False  # reassembled by websockets, in order from here on
                else:
                    data = event.data
                    self._hand_on(data if type(data) is bytes else bytes(data))
                    return
        super().process_event(event)


_AT_EOF = getattr(StreamReader.at_eof, "__code__", None)
_PARSE = getattr(Protocol.parse, "__code__", None)


def _at_frame_boundary(protocol: Any) -> bool:
    """websockets' parser of an open connection waits for a frame's first byte, nothing
    buffered, nothing half-assembled. (False for a websockets whose parser looks otherwise:
    the frames are then all websockets'.)"""
    if protocol.state is not State.OPEN or protocol.current_size is not None:
        return False
    if protocol.reader.buffer:
        return False
    # The client's handshake parser delegates to Protocol.parse, which waits in at_eof
    # between two frames.
    outer, inner = None, protocol.parser
    while (nested := getattr(inner, "gi_yieldfrom", None)) is not None:
        outer, inner = inner, nested
    return getattr(inner, "gi_code", None) is _AT_EOF and getattr(outer, "gi_code", None) is _PARSE


def _drop(payload: bytes) -> None:
    """What a connection whose session has ended does with a late message."""


class ReconnectingWebSocket:
    """A WebSocket client that stays connected until :meth:`stop`; see the module docstring.

    Health, for monitoring: ``connected``, ``connects`` (successful opens), ``reconnects`` (opens
    after the first), ``last_message_ms`` (receive time of the last message), ``last_error`` (why
    the last connection ended or the last attempt failed).
    """

    exchange: ClassVar[Exchange]
    received_ns: ClassVar[int] = 0
    """``time.perf_counter_ns()`` when the message being handed on now reached arbwatch (the
    receive loop of any connection: the loop runs one message at a time). Read it from inside
    ``on_message`` or what it calls, e.g. a signal callback, for the in-process latency."""

    def __init__(
        self,
        url: str,
        on_message: OnMessage,
        *,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        max_age_s: float | None = None,
        on_connect: OnConnect | None = None,
        on_bytes: OnBytes | None = None,
        compression: str = "none",
    ) -> None:
        try:
            parse_uri(url)
        except InvalidURI as exc:
            raise ConfigError(f"{self.exchange}: invalid WebSocket URL: {exc}") from exc
        if max_age_s is not None and max_age_s <= 0:
            raise ConfigError(f"{self.exchange}: max_age_s must be > 0, got {max_age_s}")
        self.url = url
        self.on_message = on_message
        self.on_bytes = on_bytes
        self.on_connect = on_connect
        self.compression = check_compression(compression)
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._open_timeout = open_timeout
        self._max_age_s = max_age_s
        self.connected = False
        self.connects = 0
        self.reconnects = 0
        self.last_message_ms: int | None = None
        self.last_error: str | None = None
        self._ws: ClientConnection | None = None
        self._stopping = False
        self._stop_event = asyncio.Event()  # set once by stop(); never cleared
        self._drop_event = asyncio.Event()  # set by reconnect(); cleared for each connection
        self._drop_reason = ""
        self._healthy = False  # the current connection has delivered a message
        self._running = False
        self._done = asyncio.Event()

    # Public control

    async def run(self) -> None:
        """Connect and deliver messages until :meth:`stop`, reconnecting whenever needed."""
        if self._running:
            raise RuntimeError(f"{self.exchange} WebSocket is already running")
        self._running = True
        self._done.clear()
        failures = 0  # consecutive failures: the backoff exponent
        try:
            while not self._stopping:
                try:
                    ws = await self._connect()
                except (OSError, TimeoutError, WebSocketException) as exc:
                    self.last_error = f"connect failed: {exc!r}"
                    delay = self._backoff.delay(failures)
                    failures += 1
                    log.warning("%s %s; retrying in %.2f s", self.exchange, self.last_error, delay)
                    await self._pause(delay)
                    continue
                if ws is None:
                    break  # stopped while connecting
                try:
                    healthy, planned = await self._session(ws)
                except Exception as exc:
                    # A bug in a hook must not end run(): log it and start over.
                    log.exception("%s connection failed", self.exchange)
                    self.last_error = f"connection failed: {exc!r}"
                    healthy, planned = False, False
                if healthy:
                    failures = 0
                if self._stopping or planned:
                    continue  # stop, or a reconnect asked for / due to age: no wait
                delay = self._backoff.delay(failures)
                failures += 1
                log.warning(
                    "%s connection lost (%s); reconnecting in %.2f s",
                    self.exchange,
                    self.last_error,
                    delay,
                )
                await self._pause(delay)
        finally:
            self._running = False
            self.connected = False
            self._done.set()

    async def stop(self) -> None:
        """Close the connection and make :meth:`run` return; waits until it has. Final."""
        self._stopping = True
        self._stop_event.set()
        if self._running:
            await self._done.wait()

    async def reconnect(self, reason: str) -> None:
        """Drop the current connection now; :meth:`run` opens a new one at once."""
        if self._ws is None:
            return  # between connections: the next one is fresh anyway
        log.warning("%s reconnecting: %s", self.exchange, reason)
        self._drop_reason = f"reconnect requested: {reason}"
        self._drop_event.set()

    # Hooks for the venue clients

    def _on_open(self) -> None:
        """Called on every new connection, after ``on_connect`` and before any message."""

    def _on_close(self) -> None:
        """Called when a connection has ended, before run() waits or reconnects."""

    def _on_data(self, data: bytes, recv_ms: int) -> None:
        """Called for every message (its bytes as received) after ``on_message``/``on_bytes``
        (Bybit watches its acks here)."""

    def _companions(self, ws: ClientConnection) -> Iterable[tuple[str, Coroutine[Any, Any, None]]]:
        """(role, coroutine) pairs run beside the receive loop of a connection (Bybit: send, ping).

        When one of them ends (or fails), the connection is dropped and run() reconnects.
        """
        return ()

    # One connection

    async def _connect(self) -> ClientConnection | None:
        """Open a connection; None when stop() comes first (the attempt is abandoned)."""
        opening = self._task(self._open(), "connect")
        stopper = self._task(self._stop_event.wait(), "stop")
        try:
            await asyncio.wait([opening, stopper], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await _abandon(opening)
            raise
        finally:
            await _cancel([stopper])
        if not opening.done():
            await _abandon(opening)
            return None
        return opening.result()

    async def _session(self, ws: ClientConnection) -> tuple[bool, bool]:
        """Serve one open connection until it ends; returns (healthy, planned end)."""
        self._ws = ws
        self._healthy = False
        self._drop_event.clear()
        self.connected = True
        self.connects += 1
        if self.connects > 1:
            self.reconnects += 1
        log.info("%s connected (%d)", self.exchange, self.connects)
        tasks: list[asyncio.Task[Any]] = []
        planned = False
        try:
            self._call_hook(self.on_connect, "on_connect")
            self._on_open()
            # Messages wait in the connection's queue until the receive task starts, so the
            # hooks above run before the first message is delivered.
            tasks.append(self._task(self._receive(ws), "receive"))
            tasks.extend(self._task(coro, role) for role, coro in self._companions(ws))
            tasks.append(self._task(self._stop_event.wait(), "stop"))
            tasks.append(self._task(self._drop_event.wait(), "drop"))
            done, _ = await asyncio.wait(
                tasks, timeout=self._max_age_s, return_when=asyncio.FIRST_COMPLETED
            )
            if self._stopping:
                self.last_error = "stopped"
            elif self._drop_event.is_set():
                self.last_error, planned = self._drop_reason, True
            elif not done:
                # Binance cuts connections at 24 h: leave before, on our own terms.
                self.last_error, planned = f"max age {self._max_age_s:g} s reached", True
                log.info("%s reconnecting: %s", self.exchange, self.last_error)
            else:
                self.last_error = self._ended(ws, done)
        finally:
            self.connected = False
            self._ws = None
            self._on_close()
            await _cancel(tasks)
            await ws.close()
        return self._healthy, planned

    async def _open(self) -> ClientConnection:
        return await connect(
            self.url,
            open_timeout=self._open_timeout,
            ping_interval=_PING_INTERVAL_S,
            ping_timeout=_PING_TIMEOUT_S,
            close_timeout=_CLOSE_TIMEOUT_S,
            max_size=_MAX_MESSAGE_BYTES,
            compression=None if self.compression == "none" else self.compression,
            create_connection=_DirectConnection,
        )

    async def _receive(self, ws: ClientConnection) -> None:
        """Deliver what came before the session started, then every message as it comes;
        only fragmented messages (and what follows them) come through ``recv`` here."""
        deliver = self._deliver
        direct = ws if isinstance(ws, _DirectConnection) else None
        if direct is not None:
            held, direct.held = direct.held, []
            for payload in held:
                deliver(payload)
            direct.deliver = deliver
        try:
            while True:
                deliver(await ws.recv(decode=False))
        except ConnectionClosedOK:
            return  # the server closed cleanly; ConnectionClosedError propagates
        finally:
            if direct is not None:
                direct.deliver = _drop

    def _deliver(self, data: bytes) -> None:
        ReconnectingWebSocket.received_ns = time.perf_counter_ns()
        recv_ms = int(self._clock() * 1000)
        self.last_message_ms = recv_ms
        self._healthy = True
        try:
            if self.on_bytes is not None:
                self.on_bytes(data, recv_ms)
            else:
                self.on_message(data.decode("utf-8", "replace"), recv_ms)
        except Exception:
            # A consumer bug must not cost every other stream its connection.
            log.exception("%s on_message failed; message dropped", self.exchange)
        try:
            self._on_data(data, recv_ms)
        except Exception:
            log.exception("%s: reading a reply failed; message dropped", self.exchange)

    def _ended(self, ws: ClientConnection, done: set[asyncio.Task[Any]]) -> str:
        """Why a connection ended on its own, from the tasks that finished."""
        for task in done:
            exc = task.exception()
            if isinstance(exc, ConnectionClosed):
                return f"connection closed: {exc}"
            if exc is not None:
                log.error("%s connection task failed", self.exchange, exc_info=exc)
                return f"connection task failed: {exc!r}"
        # The receive loop ends without an error when the server closes cleanly.
        return f"closed by server (code {ws.close_code}, {ws.close_reason or 'no reason'})"

    def _call_hook(self, hook: Callable[[], None] | None, name: str) -> None:
        if hook is None:
            return
        try:
            hook()
        except Exception:
            log.exception("%s %s failed", self.exchange, name)

    def _task(self, coro: Coroutine[Any, Any, _T], role: str) -> asyncio.Task[_T]:
        """A task named after its client, so that leaks show in task dumps."""
        return asyncio.create_task(coro, name=f"{TASK_PREFIX}{self.exchange}:{role}")

    async def _sleep(self, delay: float) -> None:
        await self._backoff.sleep(delay)

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` with the backoff's sleep, cut short by stop()."""
        if delay <= 0 or self._stopping:
            return
        waits = [
            self._task(self._sleep(delay), "backoff"),
            self._task(self._stop_event.wait(), "stop"),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel(waits)


async def _cancel(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until they are done, retrieving their exceptions."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _abandon(opening: asyncio.Task[ClientConnection]) -> None:
    """Give up a connection attempt; close the connection if it has opened meanwhile."""
    await _cancel([opening])
    if not opening.cancelled() and opening.exception() is None:
        await opening.result().close()
