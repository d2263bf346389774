"""Wire frames of OKX v5 (USDT swaps), built field for field like the real ones (pure).

Key order follows the recorded frames in ``../shared/fixtures/exchanges/okx_*`` and OKX's own
documentation where no frame is recorded. Every number is a string without trailing zeros,
sizes count contracts (``ctVal`` base units each), levels are ``[px, sz, "0", orders]``, and the
ids a client checks are integers (``seqId``, ``prevSeqId``, ``checksum``).
"""

from __future__ import annotations

import zlib
from typing import Any

from detector.simulator.book import LevelTicks
from detector.simulator.instruments import InstrumentSpec

OKX_PUBLIC = "/ws/v5/public"  # the public WebSocket path (wss://ws.okx.com:8443/ws/v5/public)
OKX_BOOK_DEPTH = 400  # levels a side of the ``books`` channel
CHECKSUM_LEVELS = 25  # the top levels a ``books`` checksum covers
BOOKS, TICKERS, TRADES, FUNDING = "books", "tickers", "trades", "funding-rate"
BBO = "bbo-tbt"  # top of the book, tick by tick
CHANNELS: tuple[str, ...] = (BOOKS, TICKERS, TRADES, FUNDING)
"""What a client of the detector subscribes per instrument (the recordings' channels)."""
SERVED_CHANNELS: tuple[str, ...] = (*CHANNELS, BBO)
"""Every public channel the simulator serves."""
CODE_NOT_FOUND = "60018"  # subscribe: "Wrong URL or channel:...,instId:... doesn't exist"
CODE_INVALID_REQUEST = "60012"
CODE_INVALID_OP = "60019"
CODE_INSTRUMENT_MISSING = "51001"  # REST: "Instrument ID does not exist"

Json = dict[str, Any]


def topic(channel: str, inst_id: str) -> str:
    """The simulator's name of a subscription: ``books:BTC-USDT-SWAP`` (also ``Frame.channel``
    and the ``topic`` of a :class:`~detector.simulator.scenarios.RefusedTopic` on OKX)."""
    return f"{channel}:{inst_id}"


def arg(channel: str, inst_id: str) -> Json:
    return {"channel": channel, "instId": inst_id}


def order_count(tick: int, lots: int) -> str:
    """How many orders rest at a level: a stable function of the level, ``"0"`` when deleted."""
    if not lots:
        return "0"
    return str(1 + (tick * 7919 + lots * 104_729) % min(48, 1 + lots // 40))


def levels(spec: InstrumentSpec, side: list[LevelTicks]) -> list[list[str]]:
    """Levels as ``[px, sz, "0", orders]`` (the third field is the deprecated liquidations)."""
    price, qty = spec.price_str, spec.qty_str
    return [[price(tick), qty(lots), "0", order_count(tick, lots)] for tick, lots in side]


def checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX's book checksum: CRC32 of ``bid:size:ask:size:...`` over the top 25 of each side,
    interleaved (a side that runs out is skipped), as a signed 32-bit integer."""
    parts: list[str] = []
    for i in range(CHECKSUM_LEVELS):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def books(
    inst_id: str,
    action: str,
    asks: list[list[str]],
    bids: list[list[str]],
    ts: int,
    check: int,
    prev_seq_id: int,
    seq_id: int,
) -> Json:
    """A ``books`` snapshot (``prevSeqId`` -1) or update; asks ascending, bids descending."""
    data = {
        "asks": asks,
        "bids": bids,
        "ts": str(ts),
        "checksum": check,
        "prevSeqId": prev_seq_id,
        "seqId": seq_id,
    }
    return {"arg": arg(BOOKS, inst_id), "action": action, "data": [data]}


def bbo(
    inst_id: str, spec: InstrumentSpec, bid: LevelTicks, ask: LevelTicks, ts: int, seq_id: int
) -> Json:
    """A ``bbo-tbt`` push: the best level of each side, as a ``books`` level."""
    data = {
        "asks": levels(spec, [ask]),
        "bids": levels(spec, [bid]),
        "ts": str(ts),
        "seqId": seq_id,
    }
    return {"arg": arg(BBO, inst_id), "data": [data]}


def tickers(inst_id: str, fields: Json) -> Json:
    """A ``tickers`` push (every push is the whole ticker)."""
    return {"arg": arg(TICKERS, inst_id), "data": [fields]}


def trades(inst_id: str, elements: list[Json]) -> Json:
    return {"arg": arg(TRADES, inst_id), "data": elements}


def trade(
    inst_id: str, trade_id: int, px: str, sz: str, side: str, ts: int, count: int, seq_id: int
) -> Json:
    """One element of a ``trades`` push: a taker order's fills at one price, aggregated."""
    return {
        "instId": inst_id,
        "tradeId": str(trade_id),
        "px": px,
        "sz": sz,
        "side": side,
        "ts": str(ts),
        "count": str(count),
        "source": "0",
        "seqId": seq_id,
    }


def funding_rate(inst_id: str, fields: Json) -> Json:
    return {"arg": arg(FUNDING, inst_id), "data": [fields]}


def funding_fields(
    inst_id: str,
    rate: str,
    funding_ms: int,
    next_funding_ms: int,
    premium: str,
    settled_rate: str,
    ts: int,
) -> Json:
    """The data of a ``funding-rate`` push and of ``GET /api/v5/public/funding-rate``: the
    interval is ``nextFundingTime - fundingTime``."""
    return {
        "formulaType": "noRate",
        "fundingRate": rate,
        "fundingTime": str(funding_ms),
        "impactValue": "",
        "instId": inst_id,
        "instType": "SWAP",
        "interestRate": "",
        "maxFundingRate": "0.00375",
        "method": "current_period",
        "minFundingRate": "-0.00375",
        "nextFundingRate": "",
        "nextFundingTime": str(next_funding_ms),
        "premium": premium,
        "settFundingRate": settled_rate,
        "settState": "settled",
        "ts": str(ts),
    }


def _with_id(req_id: str | None, body: Json) -> Json:
    """A request's optional ``id`` comes back first in its answers."""
    return body if req_id is None else {"id": req_id, **body}


def event(kind: str, channel: str, inst_id: str, conn_id: str, req_id: str | None = None) -> Json:
    """The answer to a ``subscribe``/``unsubscribe`` of one arg."""
    return _with_id(req_id, {"event": kind, "arg": arg(channel, inst_id), "connId": conn_id})


def error(code: str, msg: str, conn_id: str, req_id: str | None = None) -> Json:
    return _with_id(req_id, {"event": "error", "msg": msg, "code": code, "connId": conn_id})


def not_found(channel: str, inst_id: str, conn_id: str, req_id: str | None = None) -> Json:
    """The refusal of an unknown (or refused) instrument: code 60018."""
    msg = (
        f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. "
        "Please use the correct URL, channel and parameters referring to API document."
    )
    return error(CODE_NOT_FOUND, msg, conn_id, req_id)


def rest(data: list[Any], code: str = "0", msg: str = "") -> Json:
    """The REST envelope: ``code`` "0" is success; errors keep HTTP 200 with ``data`` []."""
    return {"code": code, "data": data, "msg": msg}
