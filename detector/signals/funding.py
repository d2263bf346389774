"""FUNDING_RATE_DIVERGENCE signals: the highest and lowest funding of a symbol, per 8 h, far apart.

Definition, per symbol, over the watched venues that have reported a rate for it:

- **Normalisation**: each rate (a fraction per funding interval) is divided by its interval in hours
  and scaled to 8 h, in percent: ``rate_8h_pct = rate / interval_hours * 8 * 100``. Binance's
  interval is ``binance_funding_interval_hours`` unless :meth:`set_funding_interval` or the event
  says otherwise; every other venue's is its events' ``interval_hours`` (the last one seen; OKX's
  from ``nextFundingTime - fundingTime``, Bybit's from its tickers), else 8. An interval once
  learnt is kept for the symbol.
- **Score**: ``diff_pct`` = the highest ``rate_8h_pct`` minus the lowest (percentage points, so
  never negative); strength by ``diff_pct`` against the ``funding_diff_pct`` tiers. Evaluated on
  every funding event once two venues have reported a rate for the symbol (the warm-up).
- **Episode** (dedup): starts when ``diff_pct`` reaches the weak tier (one signal), re-signals on
  an upgrade, ends silently when it falls below half the weak tier or the pair of venues (highest,
  lowest) changes. A change that is itself strong enough starts a new episode at once (reason
  ``sign_flip`` when the two venues swapped places, else ``new``). Key:
  ``funding_rate_divergence:{symbol}:{higher exchange}:{episode start ms}``.
- **Direction hint**: short the venue with the higher normalised rate, long the lower
  (``short_binance_long_okx``): that pair collects the difference.
- **Details**: ``{venue}_rate``, ``{venue}_interval_hours``, ``{venue}_rate_8h_pct`` and
  ``{venue}_next_funding_ms`` for every venue with a rate, ``higher_exchange``, ``lower_exchange``.
- **Confidence**: freshness of the older of the two rates compared: 1 when just received, falling
  linearly to 0.2 at ``funding_ttl_s``.
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

DEFAULT_INTERVAL_HOURS = 8.0
"""A venue's funding interval until one of its events or endpoints says otherwise."""
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
    lower: Exchange
    strength: SignalStrength


class FundingDivergenceDetector:
    """Latest funding rate of each exchange per symbol, compared after normalising to 8 h."""

    def __init__(self, config: DetectorConfig) -> None:
        self._config = config
        self._venues = config.exchanges
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
            else DEFAULT_INTERVAL_HOURS
        )
        return self._intervals.get((exchange, symbol), default)

    def on_funding(self, symbol: str, event: FundingRate, now_ms: int) -> list[Signal]:
        if event.interval_hours is not None:
            self.set_funding_interval(event.exchange, symbol, event.interval_hours)
        self._rates[(event.exchange, symbol)] = _Rate(event.rate, event.next_funding_ms, now_ms)
        known = [
            (venue, rate, self._normalised(venue, symbol, rate.rate))
            for venue in self._venues
            if (rate := self._rates.get((venue, symbol))) is not None
        ]
        if len(known) < 2:
            return []
        # The highest against the lowest normalised rate; on a tie, the first watched venue.
        high = max(known, key=lambda k: k[2])
        low = min(known, key=lambda k: k[2])
        if high is low:
            low = next(k for k in known if k is not high)
        higher, lower = high[0], low[0]
        magnitude = high[2] - low[2]
        tiers = self._config.rules.funding_diff_pct
        episode = self._episodes.get(symbol)
        flipped = False
        if episode is not None and (
            magnitude < tiers[0] / 2.0 or (episode.higher, episode.lower) != (higher, lower)
        ):
            flipped = (episode.higher, episode.lower) == (lower, higher)
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
                lower,
                strength,
            )
            self._episodes[symbol] = episode
        elif strength.rank > episode.strength.rank:
            reason = SignalReason.UPGRADE
            episode.strength = strength
        else:
            self.suppressed += 1
            return []
        older_ms = min(high[1].seen_ms, low[1].seen_ms)
        value, factors = confidence.combine(
            {
                "freshness": confidence.linear_decay(
                    now_ms - older_ms, self._ttl_ms, confidence.FRESHNESS_FLOOR
                )
            }
        )
        details: dict[str, object] = {}
        for venue, rate, _ in known:
            details[f"{venue.value}_rate"] = rate.rate
        for venue, _, _ in known:
            details[f"{venue.value}_interval_hours"] = self.interval_hours(venue, symbol)
        for venue, _, rate_8h in known:
            details[f"{venue.value}_rate_8h_pct"] = rate_8h
        details.update(
            {
                "diff_pct": magnitude,
                "abs_diff_pct": magnitude,
                "higher_exchange": higher.value,
                "lower_exchange": lower.value,
                "direction_hint": f"short_{higher.value}_long_{lower.value}",
            }
        )
        for venue, rate, _ in known:
            details[f"{venue.value}_next_funding_ms"] = rate.next_funding_ms
        details.update({"reason": reason.value, "confidence_factors": factors})
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
