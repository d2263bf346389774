"""The I/O edge: REST (httpx) and WebSocket (websockets) clients that move raw payloads.

They never parse into books: REST calls return :class:`RestResult` (decoded JSON as received),
WebSocket clients hand every text message to ``on_message(text, recv_ms)``; the pure venue
parsers take it from there.
"""

from __future__ import annotations

from detector.clients.backoff import Backoff
from detector.clients.connection import ReconnectingWebSocket
from detector.clients.okx_ws import OkxWebSocket
from detector.clients.ratelimit import WeightLimiter
from detector.clients.rest import BinanceClient, BybitClient, OkxClient, RestResult
from detector.clients.ws import BinanceWebSocket, BybitWebSocket, split_streams, stream_path

__all__ = [
    "Backoff",
    "BinanceClient",
    "BinanceWebSocket",
    "BybitClient",
    "BybitWebSocket",
    "OkxClient",
    "OkxWebSocket",
    "ReconnectingWebSocket",
    "RestResult",
    "WeightLimiter",
    "split_streams",
    "stream_path",
]
