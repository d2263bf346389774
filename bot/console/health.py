"""Console health: a short periodic line, and one line for each change of state when it happens.

:func:`health_changes` compares two :class:`~detector.engine.Health` snapshots (pure): a feed
down or up again (with its error), a sequence gap and the resync, a book going stale and fresh
again. A feed that never connected because the network is missing says so once, with the next
step. :class:`HealthWatch` keeps the previous snapshot for the live commands' loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.console.signals import format_time
from bot.messages import format_duration
from detector.book import BookState
from detector.config import FeedUrls
from detector.models import Exchange

if TYPE_CHECKING:
    from detector.engine import BookHealth, ExchangeHealth, Health

HEALTH_EVERY_S = 10.0
"""How often the live commands print the periodic health line on stderr."""
HEALTH_CHECK_S = 1.0
"""How often the live commands look for changes of health (one line each, when they happen)."""
SILENT_AFTER_MS = 2_000
"""A connected feed without a frame for this long is called silent in the periodic line."""
ERROR_CHARS = 120
"""An error quoted in a line is cut to this many characters."""

# What a feed's last_error holds when the host cannot be reached at all (websockets and httpx):
# the name does not resolve, nothing listens, or no route leads there.
_NO_NETWORK = re.compile(
    r"gaierror|name resolution|Name or service not known|nodename nor servname|"
    r"No address associated|ConnectionRefused|Connect call failed|Network is unreachable|"
    r"No route to host|ConnectError|ConnectTimeout|TimeoutError",
    re.IGNORECASE,
)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def feed_hosts(urls: FeedUrls) -> dict[Exchange, str]:
    """The host each exchange's WebSocket feed connects to, for the "no network" line."""
    hosts = {Exchange.BINANCE: urls.binance_ws, Exchange.BYBIT: urls.bybit_ws}
    return {exchange: urlsplit(url).hostname or url for exchange, url in hosts.items()}


def is_offline(ex: ExchangeHealth) -> bool:
    """True when the feed never connected and its last error says the host is unreachable."""
    feed = ex.feed
    return (
        feed.connects == 0
        and not feed.connected
        and feed.last_error is not None
        and _NO_NETWORK.search(feed.last_error) is not None
    )


def format_health(health: Health, *, tz: tzinfo | None = None) -> str:
    """``health 10:12:30 CET · binance up 412 f/s · bybit up 380 f/s · books 6/6 · p99 3 ms``."""
    parts = [f"health {format_time(health.now_ms, tz, millis=False)}"]
    parts.extend(_feed_state(exchange, ex) for exchange, ex in health.exchanges.items())
    live = sum(b.healthy for b in health.books)
    parts.append(f"books {live}/{len(health.books)}")
    if health.quarantined:
        parts.append(f"quarantined {len(health.quarantined)}")
    if health.latency_p99_ms is not None:
        parts.append(f"p99 {health.latency_p99_ms:.0f} ms")
    parts.append(_count(health.signals, "signal"))
    if health.internal_errors:
        parts.append(_count(health.internal_errors, "internal error"))
    return " · ".join(parts)


def health_changes(
    previous: Health | None,
    current: Health,
    *,
    tz: tzinfo | None = None,
    hosts: Mapping[Exchange, str] | None = None,
    stale_after_ms: int = 5_000,
) -> list[str]:
    """One line per change from ``previous`` to ``current`` (None: the start): feeds, then books."""
    stamp = format_time(current.now_ms, tz, millis=False)
    texts: list[str] = []
    for exchange, ex in current.exchanges.items():
        before = None if previous is None else previous.exchanges.get(exchange)
        texts.extend(_feed_changes(exchange, before, ex, (hosts or {}).get(exchange)))
    if previous is not None:
        texts.extend(_book_changes(previous.books, current.books, stale_after_ms))
        new_errors = current.internal_errors - previous.internal_errors
        if new_errors > 0:
            texts.append(f"{_count(new_errors, 'internal error')} (see the log)")
    return [f"{stamp}  {text}" for text in texts]


@dataclass(slots=True)
class HealthWatch:
    """The previous snapshot, for :func:`health_changes` on each new one."""

    tz: tzinfo | None = None
    hosts: Mapping[Exchange, str] = field(default_factory=dict)
    stale_after_ms: int = 5_000
    previous: Health | None = None

    def update(self, health: Health) -> list[str]:
        """The lines of what changed since the last snapshot (since the start, the first time)."""
        texts = health_changes(
            self.previous, health, tz=self.tz, hosts=self.hosts, stale_after_ms=self.stale_after_ms
        )
        self.previous = health
        return texts


def _feed_state(exchange: Exchange, ex: ExchangeHealth) -> str:
    name = exchange.value
    if ex.feed.connected:
        text = f"{name} up {ex.frames_per_s:.0f} f/s"
        age = ex.last_frame_age_ms
        if age is not None and age >= SILENT_AFTER_MS:
            text += f", silent {format_duration(age)}"
        if ex.gaps:
            text += f", {_count(ex.gaps, 'gap')}"
        return text
    if is_offline(ex):
        return f"{name} no network"
    if ex.feed.connects == 0 and ex.feed.last_error is None:
        return f"{name} connecting"
    return f"{name} DOWN"


def _feed_changes(
    exchange: Exchange, before: ExchangeHealth | None, ex: ExchangeHealth, host: str | None
) -> list[str]:
    name, feed = exchange.value, ex.feed
    error = _cut(feed.last_error or "no reason given")
    if before is None or (before.feed.connects == 0 and not before.feed.connected):
        # Still connecting for the first time: only news is a first failure, or success after it.
        failed_before = before is not None and before.feed.last_error is not None
        if feed.connected:
            return [f"{name}: connected"] if failed_before else []
        if feed.connects > 0:  # connected and lost again between two looks
            return [f"{name}: feed down — {error}"]
        if feed.last_error is None or failed_before:
            return []
        if is_offline(ex):
            return [_no_network(name, host, error)]
        return [f"{name}: cannot connect{f' to {host}' if host else ''} — {error}"]
    texts: list[str] = []
    was = before.feed
    if was.connected and not feed.connected:
        texts.append(f"{name}: feed down — {error}")
    elif not was.connected and feed.connected:
        texts.append(f"{name}: feed up again")
    elif feed.connected and feed.reconnects > was.reconnects:
        texts.append(f"{name}: feed reconnected")
    if feed.connected and feed.rest_errors > was.rest_errors and feed.last_error != was.last_error:
        texts.append(f"{name}: REST request failed — {error}")
    bad = ex.frame_errors - before.frame_errors
    if bad > 0:
        texts.append(f"{name}: {_count(bad, 'bad frame')} skipped (see the log)")
    return texts


def _no_network(name: str, host: str | None, error: str) -> str:
    if host is None:
        return f"{name}: no network ({error}) — check the connection, or try `arbwatch demo`"
    if host in _LOOPBACK:
        return f"{name}: cannot reach {host} — {error}"
    return (
        f"{name}: no network (cannot reach {host}) — check the connection, or try `arbwatch demo`"
    )


def _book_changes(before: list[BookHealth], after: list[BookHealth], stale_ms: int) -> list[str]:
    """Book changes, grouped: one line per exchange and kind of change, naming the symbols."""
    previous = {(b.exchange, b.symbol): b for b in before}
    groups: dict[tuple[Exchange, str], list[BookHealth]] = {}
    for book in after:
        was = previous.get((book.exchange, book.symbol))
        if was is None:
            continue
        for kind in _book_kinds(was, book, stale_ms):
            groups.setdefault((book.exchange, kind), []).append(book)
    texts = []
    for (exchange, kind), books in groups.items():
        symbols = ", ".join(b.symbol for b in books)
        news = _BOOK_NEWS.get(kind, kind)
        if kind == "stale":
            ages = [b.age_ms for b in books if b.age_ms is not None]
            news += f" (no update for {format_duration(max(ages))})" if ages else ""
        noun = "books" if len(books) > 1 else "book"
        texts.append(f"{exchange.value} {symbols}: {noun} {news}")
    return texts


_BOOK_NEWS = {
    "gap": "broke (sequence gap), resyncing",
    "resynced": "resynced",
    "gap_resynced": "resynced after a sequence gap",
    "stale_blip": "went stale and came back",
    "unsynced": "out of sync, resyncing",
    "crossed": "crossed (best bid at or above best ask)",
    "stale": "stale",
    "fresh": "fresh again",
}


def _book_kinds(was: BookHealth, book: BookHealth, stale_ms: int) -> list[str]:
    """What happened to one book between two looks (a second apart): none, one or two kinds."""
    gapped, resynced = book.gaps > was.gaps, book.resyncs > was.resyncs
    if gapped or resynced:
        if gapped and resynced and book.healthy:
            return ["gap_resynced"]
        return [kind for kind, news in (("gap", gapped), ("resynced", resynced)) if news]
    if book.stale > was.stale:  # counted by the pipeline, so a short stall is not missed
        return ["stale"] if not book.healthy else ["stale_blip"]
    if was.healthy and not book.healthy:
        if book.state != BookState.SYNCED.value:
            return ["unsynced"]
        if book.age_ms is None or book.age_ms > stale_ms:
            return ["stale"]
        return ["crossed"]
    # A first sync is no news; a book that was live, then stale or crossed, is.
    if not was.healthy and book.healthy and was.state == BookState.SYNCED.value:
        return ["fresh"]
    return []


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cut(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
