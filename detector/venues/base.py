"""VenueParser: the interface of every venue parser, so that callers can treat them alike."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from detector.models import Event


class VenueParser(Protocol):
    """Decoded payloads of one exchange in, normalized events out; pure, no I/O.

    Both methods raise :class:`~detector.errors.MalformedFrame` for a payload of the wrong shape
    and :class:`~detector.errors.FrameError` for an error the exchange reports.
    """

    def parse_ws_message(self, data: Any, recv_ms: int) -> list[Event]:
        """A decoded WebSocket frame → events (``[]`` for frames of no interest)."""
        ...

    def parse_ws_raw(self, payload: bytes | msgspec.Raw, recv_ms: int) -> list[Event]:
        """A WebSocket frame as received (undecoded JSON) → the events of
        :meth:`parse_ws_message`; a parser may decode its hot frames typed on the way."""
        ...

    def parse_rest(self, endpoint: str, data: Any, recv_ms: int) -> list[Event]:
        """A decoded REST body of ``endpoint`` (path with query string) → events."""
        ...
