"""Exceptions of the detector package.

Every exception raised on purpose by ``detector`` derives from :class:`DetectorError`::

    DetectorError
    ├── FrameError             a frame could not be understood (carries exchange and reason)
    │   ├── MalformedFrame     JSON or shape broken, a field missing or of the wrong type
    │   └── UnknownInstrument  a frame of an instrument whose contract spec is unknown (inst_id)
    ├── BookError              an order book cannot be used
    │   ├── SequenceGap        an update does not follow the previous one (expected, got)
    │   ├── BookNotSynced      the book waits for a snapshot / resubscription
    │   └── InvalidBook        crossed book, non-positive price or size
    ├── RecordingError         a recording line is unusable (line number, reason)
    ├── ConfigError            a detector setting is out of range
    └── ExchangeError          a REST call to an exchange failed (carries exchange)
        ├── ExchangeApiError   the exchange refused the request (code, message, http_status)
        ├── RateLimited        too many requests or banned (retry_after seconds, banned)
        └── ExchangeUnavailable  5xx, timeout or connection error (reason); worth retrying

Callers that process a stream catch :class:`FrameError` or :class:`BookError`, log them and go on:
one bad frame never stops a feed or resets another symbol's book. The I/O clients raise
:class:`ExchangeError`; they translate library exceptions (httpx) into it and chain the cause.
"""

from __future__ import annotations

from typing import TypeVar

_E = TypeVar("_E", bound=BaseException)


def caused_by(error: _E, cause: BaseException) -> _E:
    """``error`` with ``cause`` as its ``__cause__``: write ``raise caused_by(e, exc) from exc``.

    The compiled core (mypyc) drops the ``from`` of a ``raise``; the cause set here stays, so a
    frame's fault keeps its underlying error in either build.
    """
    error.__cause__ = cause
    return error


class DetectorError(Exception):
    """Root of every error the detector raises on purpose."""


class FrameError(DetectorError):
    """A frame from an exchange could not be turned into events."""

    def __init__(self, exchange: str, reason: str, frame: object = None) -> None:
        self.exchange = exchange
        self.reason = reason
        self.frame = frame
        super().__init__(f"{exchange}: {reason}")


class MalformedFrame(FrameError):
    """The frame is not JSON, or lacks a field the wire format requires, or has a wrong type."""


class UnknownInstrument(FrameError):
    """A frame of an instrument the parser cannot convert: OKX sizes are contracts, and without
    the instrument's ``ctVal * ctMult`` (from ``/api/v5/public/instruments``) no base-coin
    quantity can be computed. Also raised for instruments outside the compared set (not a live
    USDT-settled linear swap)."""

    def __init__(self, exchange: str, inst_id: str, reason: str, frame: object = None) -> None:
        self.inst_id = inst_id
        super().__init__(exchange, f"{inst_id}: {reason}", frame)


class BookError(DetectorError):
    """An order book cannot be used as it is."""


class SequenceGap(BookError):
    """An update id does not continue the chain: updates were lost in between."""

    def __init__(self, exchange: str, symbol: str, expected: int, got: int) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.expected = expected
        self.got = got
        super().__init__(f"{exchange} {symbol}: sequence gap, expected {expected}, got {got}")


class BookNotSynced(BookError):
    """The book has no synced state yet; it needs a snapshot or a resubscription."""

    def __init__(self, exchange: str, symbol: str, need: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.need = need
        super().__init__(f"{exchange} {symbol}: book not synced, needs {need}")


class InvalidBook(BookError):
    """The book violates an invariant: crossed, or a non-positive price or size."""

    def __init__(self, exchange: str, symbol: str, reason: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.reason = reason
        super().__init__(f"{exchange} {symbol}: invalid book: {reason}")


class RecordingError(DetectorError):
    """A line of a recording cannot be read."""

    def __init__(self, line_no: int, reason: str) -> None:
        self.line_no = line_no
        self.reason = reason
        super().__init__(f"line {line_no}: {reason}")


class ConfigError(DetectorError):
    """A detector setting is out of its valid range."""


class ExchangeError(DetectorError):
    """A request to an exchange failed."""

    def __init__(self, exchange: str, message: str) -> None:
        self.exchange = exchange
        super().__init__(f"{exchange}: {message}")


class ExchangeApiError(ExchangeError):
    """The exchange answered with an error: Binance ``{"code","msg"}`` (HTTP 4xx), Bybit
    ``retCode != 0`` (HTTP 200). ``code`` is None when the body carried none."""

    def __init__(self, exchange: str, code: int | None, message: str, http_status: int) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        super().__init__(exchange, f"error {code} (HTTP {http_status}): {message}")


class RateLimited(ExchangeError):
    """Too many requests. ``banned``: the IP is banned (Binance 418, Bybit 403) and every request
    before ``retry_after`` seconds have passed prolongs the ban."""

    def __init__(self, exchange: str, retry_after: float, banned: bool) -> None:
        self.retry_after = retry_after
        self.banned = banned
        what = "IP banned" if banned else "rate limited"
        super().__init__(exchange, f"{what}, retry after {retry_after:g} s")


class ExchangeUnavailable(ExchangeError):
    """The exchange could not be reached or failed on its side (5xx, timeout, connection)."""

    def __init__(self, exchange: str, reason: str) -> None:
        self.reason = reason
        super().__init__(exchange, f"unavailable: {reason}")
