"""Typed decoding of the hot frames, straight from the received bytes (msgspec, in C).

Each venue parser decodes its most frequent frames (book updates, tops, trades) into the Structs
of its module with one strict :class:`msgspec.json.Decoder`; the price levels of a frame are kept
as :class:`msgspec.Raw` and decoded by :data:`LEVELS`, the one lax decoder, which reads
``"64020.10"`` as the float Python's ``float()`` gives. Every check of the dict path holds: a
price is finite and > 0, a size finite and >= 0, an id or a time a JSON integer. Anything the
typed decoders refuse — another message, a field of another type, a malformed frame — goes to the
dict path (``orjson.loads`` and ``parse_ws_message``), which gives the same events or names the
fault exactly as before: the fast path only ever accepts what the dict path accepts, with the same
values.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import msgspec
import orjson

from detector.errors import MalformedFrame
from detector.models import Exchange, Level

_MAX = sys.float_info.max
Price = Annotated[float, msgspec.Meta(gt=0.0, le=_MAX)]
"""A finite price > 0 (``"inf"`` and ``"nan"`` are refused)."""
Size = Annotated[float, msgspec.Meta(ge=0.0, le=_MAX)]
"""A finite size >= 0."""

LEVELS = msgspec.json.Decoder(list[tuple[Price, Size]], strict=False)
"""``[["64020.10", "0.005"], ...]`` → ``[(64020.1, 0.005), ...]``: numbers or numeric strings."""

REFUSED = (msgspec.ValidationError, msgspec.DecodeError)
"""What a typed decoder raises for a payload it does not take: the dict path decides then."""


def decode_json(payload: bytes | msgspec.Raw, exchange: Exchange) -> Any:
    """The payload as plain JSON values, for the dict path; MalformedFrame when it is no JSON."""
    try:
        return orjson.loads(payload if type(payload) is bytes else memoryview(payload))
    except orjson.JSONDecodeError as exc:
        raise MalformedFrame(exchange, f"frame is not JSON ({exc})", bytes(payload)) from None


def levels(raw: msgspec.Raw) -> list[Level]:
    """One side's levels; raises one of :data:`REFUSED` for any level the dict path would
    refuse (or read another way)."""
    return LEVELS.decode(raw)
