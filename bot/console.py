"""Console output: a readable line (or a JSON object) per signal, health lines, summaries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from detector.analyzer import AnalyzerStats
from detector.signals import Signal, SignalType

if TYPE_CHECKING:
    from detector.engine import Health


def format_time(ms: int) -> str:
    """UTC time with milliseconds, e.g. ``2026-08-12 10:12:25.129``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _num(value: Any, digits: int = 10) -> str:
    """A float with ``digits`` significant digits (prices keep their ticks), else ``str``."""
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def format_signal(signal: Signal) -> str:
    """One line for a human: when, what, how strong, and the figures that matter."""
    head = (
        f"{format_time(signal.timestamp)}  {signal.type.value.upper():<23} "
        f"{signal.strength.value.upper():<8} {signal.symbol:<10} conf {signal.confidence:.2f}"
    )
    d = signal.details
    if signal.type is SignalType.ARBITRAGE:
        body = (
            f"buy {d['buy_exchange']} @ {_num(d['buy_price'])} → sell {d['sell_exchange']} @ "
            f"{_num(d['sell_price'])}  gross {d['profit_percentage']:.3f}%  "
            f"net {d['net_profit_percentage']:.3f}%  vol {_num(d['max_volume'], 6)}  "
            f"exp {d['expected_profit']:.2f} USDT"
        )
    else:
        body = "  ".join(
            f"{k}={_num(v, 6)}"
            for k, v in d.items()
            if isinstance(v, int | float | str) and v != ""
        )
    return f"{head}  {body}"


def format_opportunity_stats(stats: AnalyzerStats) -> str:
    """``3 opened (2 closed), peak net avg 0.21% max 0.35%, duration median 4.1s max 9.8s``."""
    if not stats.opened:
        return "none"
    text = f"{stats.opened} opened ({stats.closed} closed, {stats.open_now} open)"
    if stats.avg_peak_net_pct is not None and stats.max_peak_net_pct is not None:
        text += f", peak net avg {stats.avg_peak_net_pct:.3f}% max {stats.max_peak_net_pct:.3f}%"
    if stats.median_duration_ms is not None and stats.max_duration_ms is not None:
        text += (
            f", duration median {stats.median_duration_ms / 1000:.1f}s"
            f" max {stats.max_duration_ms / 1000:.1f}s"
        )
    return text + f", expected profit at peaks {stats.total_expected_profit_at_peak:.2f} USDT"


def format_health(health: Health) -> str:
    """One status line: each exchange's connection, rate, age and repairs; books; latency."""
    parts = [f"health {format_time(health.now_ms)[11:19]}"]
    for exchange, ex in health.exchanges.items():
        state = "up" if ex.feed.connected else "DOWN"
        age = "-" if ex.last_frame_age_ms is None else f"{ex.last_frame_age_ms / 1000:.1f}s"
        parts.append(
            f"{exchange.value} {state} {ex.frames_per_s:.0f} f/s age {age}"
            f" reconnects {ex.feed.reconnects} gaps {ex.gaps} resyncs {ex.resyncs}"
            + (f" errors {ex.frame_errors}" if ex.frame_errors else "")
            + (f" ({ex.feed.last_error})" if not ex.feed.connected and ex.feed.last_error else "")
        )
    healthy = sum(b.healthy for b in health.books)
    parts.append(f"books {healthy}/{len(health.books)} healthy")
    if health.latency_p50_ms is not None:
        parts.append(
            f"latency p50 {health.latency_p50_ms:.0f} ms p99 {health.latency_p99_ms:.0f} ms"
        )
    parts.append(f"signals {health.signals}")
    return " | ".join(parts)


HEALTH_EVERY_S = 10.0
"""How often the live commands print a health line on stderr."""


def signal_printer(json_out: bool, out: TextIO) -> Callable[[Signal], None]:
    """Print each signal as a readable line, or as one JSON object per line."""

    def emit(sig: Signal) -> None:
        if json_out:
            out.write(orjson.dumps(sig.to_dict()).decode() + "\n")
        else:
            out.write(format_signal(sig) + "\n")
        out.flush()

    return emit
