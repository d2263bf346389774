"""FUNDING_RATE_DIVERGENCE signals: Binance and Bybit funding of a symbol, per 8 h, far apart.

Definition, per symbol:

- **Normalisation**: each rate (a fraction per funding interval) is divided by its interval in hours
  and scaled to 8 h, in percent: ``rate_8h_pct = rate / interval_hours * 8 * 100``. Binance's
  interval is ``binance_funding_interval_hours`` unless :meth:`set_funding_interval` or the event
  says otherwise; Bybit's is the event's ``interval_hours`` (the last one seen), else 8. An interval
  once learnt is kept for the symbol.
- **Score**: ``diff_pct = binance_rate_8h_pct - bybit_rate_8h_pct`` (percentage points);
  strength by ``|diff_pct|`` against the ``funding_diff_pct`` tiers. Evaluated on every funding
  event once both exchanges have reported a rate for the symbol (the warm-up).
- **Episode** (dedup): starts when ``|diff_pct|`` reaches the weak tier (one signal), re-signals on
  an upgrade, ends silently when ``|diff_pct|`` falls below half the weak tier or the sign flips. A
  flip that is itself strong enough starts a new episode at once (reason ``sign_flip``). Key:
  ``funding_rate_divergence:{symbol}:{higher exchange}:{episode start ms}``.
- **Direction hint**: short the exchange with the higher normalised rate, long the other
  (``short_binance_long_bybit`` / ``short_bybit_long_binance``): that pair collects the difference.
- **Confidence**: freshness of the older of the two rates: 1 when just received, falling linearly to
  0.2 at ``funding_ttl_s``.
- **Expiry**: timestamp + ``funding_ttl_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from detector.config import DetectorConfig
from detector.models import Exchange, FundingRate
from detector.signals import confidence
from detector.signals.signal import (
    Signal,
    SignalReason,
    SignalStrength,
    SignalType,
    strength_for,
)

BYBIT_DEFAULT_INTERVAL_HOURS = 8.0
NORMALISED_HOURS = 8.0


@dataclass(frozen=True, slots=True)
class _Rate:
    rate: float
    next_funding_ms: int | None
    seen_ms: int


@dataclass(slots=True)
class _Episode:
    key: str
    higher: Exchange
    strength: SignalStrength


class FundingDivergenceDetector:
    """Latest funding rate of each exchange per symbol, compared after normalising to 8 h."""

    def __init__(self, config: DetectorConfig) -> None:
        self._config = config
        self._ttl_ms = round(config.rules.funding_ttl_s * 1000)
        self._rates: dict[tuple[Exchange, str], _Rate] = {}
        self._intervals: dict[tuple[Exchange, str], float] = {}
        self._episodes: dict[str, _Episode] = {}
        self.suppressed = 0

    def set_funding_interval(self, exchange: Exchange, symbol: str, hours: float) -> None:
        if hours > 0:
            self._intervals[(exchange, symbol)] = hours

    def interval_hours(self, exchange: Exchange, symbol: str) -> float:
        """The funding interval used for ``exchange``'s rate of ``symbol``."""
        default = (
            self._config.binance_funding_interval_hours
            if exchange is Exchange.BINANCE
            else BYBIT_DEFAULT_INTERVAL_HOURS
        )
        return self._intervals.get((exchange, symbol), default)

    def on_funding(self, symbol: str, event: FundingRate, now_ms: int) -> list[Signal]:
        if event.interval_hours is not None:
            self.set_funding_interval(event.exchange, symbol, event.interval_hours)
        self._rates[(event.exchange, symbol)] = _Rate(event.rate, event.next_funding_ms, now_ms)
        binance = self._rates.get((Exchange.BINANCE, symbol))
        bybit = self._rates.get((Exchange.BYBIT, symbol))
        if binance is None or bybit is None:
            return []
        binance_8h = self._normalised(Exchange.BINANCE, symbol, binance.rate)
        bybit_8h = self._normalised(Exchange.BYBIT, symbol, bybit.rate)
        diff = binance_8h - bybit_8h
        magnitude = abs(diff)
        higher = Exchange.BINANCE if diff > 0 else Exchange.BYBIT
        tiers = self._config.rules.funding_diff_pct
        episode = self._episodes.get(symbol)
        flipped = False
        if episode is not None and (magnitude < tiers[0] / 2.0 or episode.higher is not higher):
            flipped = episode.higher is not higher
            del self._episodes[symbol]
            episode = None
        strength = strength_for(magnitude, tiers)
        if strength is None:
            return []
        if episode is None:
            reason = SignalReason.SIGN_FLIP if flipped else SignalReason.NEW
            episode = _Episode(
                f"{SignalType.FUNDING_RATE_DIVERGENCE.value}:{symbol}:{higher.value}:{now_ms}",
                higher,
                strength,
            )
            self._episodes[symbol] = episode
        elif strength.rank > episode.strength.rank:
            reason = SignalReason.UPGRADE
            episode.strength = strength
        else:
            self.suppressed += 1
            return []
        older_ms = min(binance.seen_ms, bybit.seen_ms)
        value, factors = confidence.combine(
            {
                "freshness": confidence.linear_decay(
                    now_ms - older_ms, self._ttl_ms, confidence.FRESHNESS_FLOOR
                )
            }
        )
        lower = Exchange.BYBIT if higher is Exchange.BINANCE else Exchange.BINANCE
        details = {
            "binance_rate": binance.rate,
            "bybit_rate": bybit.rate,
            "binance_interval_hours": self.interval_hours(Exchange.BINANCE, symbol),
            "bybit_interval_hours": self.interval_hours(Exchange.BYBIT, symbol),
            "binance_rate_8h_pct": binance_8h,
            "bybit_rate_8h_pct": bybit_8h,
            "diff_pct": diff,
            "abs_diff_pct": magnitude,
            "higher_exchange": higher.value,
            "direction_hint": f"short_{higher.value}_long_{lower.value}",
            "binance_next_funding_ms": binance.next_funding_ms,
            "bybit_next_funding_ms": bybit.next_funding_ms,
            "reason": reason.value,
            "confidence_factors": factors,
        }
        return [
            Signal(
                type=SignalType.FUNDING_RATE_DIVERGENCE,
                symbol=symbol,
                strength=strength,
                confidence=value,
                timestamp=now_ms,
                expires_at=now_ms + self._ttl_ms,
                key=episode.key,
                details=details,
            )
        ]

    def _normalised(self, exchange: Exchange, symbol: str, rate: float) -> float:
        return rate / self.interval_hours(exchange, symbol) * NORMALISED_HOURS * 100.0
