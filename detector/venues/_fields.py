"""Field converters shared by the venue parsers: wire values in, checked floats and ints out.

Every converter raises :class:`MalformedFrame` naming the field, never a bare ``KeyError``,
``TypeError`` or ``ValueError``: a venue parser can let them propagate as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from detector.errors import MalformedFrame, caused_by
from detector.models import Exchange, Level

_INF = math.inf


def parse_levels(raw: Any, exchange: Exchange, field: str, frame: Any) -> list[Level]:
    """``[[price, size], ...]`` → ``[(price, size), ...]``; price > 0 and size >= 0, both finite.

    Hot path: one comprehension converts and checks every level (NaN fails every comparison, so
    it is rejected too); a level that fails is left out and the length check catches it. Only
    then, on the error path, is the offending level looked for.
    """
    if type(raw) is not list:
        raise MalformedFrame(exchange, f"field {field!r} must be a list of levels", frame)
    try:
        out = [
            (fp, fq)
            for p, q in raw
            if 0.0 < (fp := float(p)) < _INF and 0.0 <= (fq := float(q)) < _INF
        ]
    except (TypeError, ValueError) as exc:
        raise caused_by(MalformedFrame(exchange, _bad_level(raw, field), frame), exc) from exc
    if len(out) != len(raw):
        raise MalformedFrame(exchange, _bad_level(raw, field), frame)
    return out


def _bad_level(raw: list[Any], field: str) -> str:
    for i, level in enumerate(raw):
        try:
            p, q = level
            fp, fq = float(p), float(q)
        except (TypeError, ValueError):
            return f"field {field!r} level {i} {level!r} is not a [price, size] pair of numbers"
        if not 0.0 < fp < _INF:
            return f"field {field!r} level {i} has an invalid price {p!r}"
        if not 0.0 <= fq < _INF:
            return f"field {field!r} level {i} has an invalid size {q!r}"
    return f"field {field!r} has an invalid level"  # pragma: no cover - unreachable


def require(obj: Mapping[str, Any], key: str, exchange: Exchange, what: str, frame: Any) -> Any:
    """``obj[key]``, or MalformedFrame naming the field."""
    try:
        return obj[key]
    except KeyError:
        raise MalformedFrame(exchange, f"{what}: missing field {key!r}", frame) from None


def to_int(value: Any, field: str, exchange: Exchange, frame: Any) -> int:
    """An integer (ids, ms times); Bybit writes some of them as decimal strings."""
    if type(value) is int:
        return value
    if type(value) is str and value.isdigit():
        return int(value)
    raise MalformedFrame(exchange, f"field {field!r} must be an integer, got {value!r}", frame)


def to_price(value: Any, field: str, exchange: Exchange, frame: Any) -> float:
    """A finite price > 0."""
    result = _to_float(value, field, exchange, frame)
    if not 0.0 < result < _INF:
        raise MalformedFrame(exchange, f"field {field!r} must be a price > 0, got {value!r}", frame)
    return result


def to_size(value: Any, field: str, exchange: Exchange, frame: Any) -> float:
    """A finite size >= 0."""
    result = _to_float(value, field, exchange, frame)
    if not 0.0 <= result < _INF:
        raise MalformedFrame(exchange, f"field {field!r} must be a size >= 0, got {value!r}", frame)
    return result


def to_rate(value: Any, field: str, exchange: Exchange, frame: Any) -> float:
    """A finite number of either sign (funding rates)."""
    result = _to_float(value, field, exchange, frame)
    if not -_INF < result < _INF:
        raise MalformedFrame(exchange, f"field {field!r} must be finite, got {value!r}", frame)
    return result


def _to_float(value: Any, field: str, exchange: Exchange, frame: Any) -> float:
    if type(value) is bool:
        raise MalformedFrame(exchange, f"field {field!r} must be a number, got {value!r}", frame)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise MalformedFrame(
            exchange, f"field {field!r} must be a number, got {value!r}", frame
        ) from None


def to_symbol(value: Any, field: str, exchange: Exchange, frame: Any) -> str:
    if type(value) is not str or not value:
        raise MalformedFrame(exchange, f"field {field!r} must be a symbol, got {value!r}", frame)
    return value


class Fields:
    """Checked access to the fields of one wire object; each failure names the field."""

    __slots__ = ("exchange", "frame", "obj", "what")

    def __init__(self, obj: Mapping[str, Any], exchange: Exchange, what: str, frame: Any) -> None:
        self.obj = obj
        self.exchange = exchange
        self.what = what  # the message kind, for error reasons ("bookTicker")
        self.frame = frame  # the whole frame, kept on the error

    def value(self, key: str) -> Any:
        return require(self.obj, key, self.exchange, self.what, self.frame)

    def integer(self, key: str) -> int:
        return to_int(self.value(key), key, self.exchange, self.frame)

    def price(self, key: str) -> float:
        return to_price(self.value(key), key, self.exchange, self.frame)

    def size(self, key: str) -> float:
        return to_size(self.value(key), key, self.exchange, self.frame)

    def rate(self, key: str) -> float:
        return to_rate(self.value(key), key, self.exchange, self.frame)

    def symbol(self, key: str) -> str:
        return to_symbol(self.value(key), key, self.exchange, self.frame)


def split_endpoint(endpoint: str) -> tuple[str, dict[str, str]]:
    """``"/fapi/v1/depth?symbol=X&limit=5"`` → ``("/fapi/v1/depth", {"symbol": "X", ...})``.

    Full URLs work too; of a repeated parameter the last value wins.
    """
    parts = urlsplit(endpoint)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    return parts.path.rstrip("/"), query
