"""ARBITRAGE signals from the analyzer's opportunity events.

Definition:

- **Strength** by the net profit as a multiple of ``min_profit_pct``: below
  ``arb_moderate_multiple`` WEAK, below ``arb_strong_multiple`` MODERATE, else STRONG. When
  ``min_profit_pct`` is 0 the multiples apply to 0.1 % instead (defaults: WEAK < 0.2 % <= MODERATE
  < 0.4 % <= STRONG). Every reported opportunity is at least WEAK.
- **Dedup**: one signal when an opportunity opens; another only when it upgrades in strength or its
  net profit has grown by ``arb_regrowth_pct`` points or more over the last signalled value. An
  UPDATED event that does neither is suppressed; CLOSED emits nothing (the aggregator drops the
  opportunity's signal from the active set). An UPDATED event for an opportunity this detector has
  not seen open (it started mid-way) signals like an open.
- **Flicker guard**: an opportunity that re-opens (same symbol and direction) less than
  ``arb_reopen_quiet_s`` after the last signal about that pair is compared with that signal, as if
  it had never closed: it signals only on an upgrade or a regrowth. Books hovering around the
  threshold would otherwise announce the same crossing every few hundred milliseconds.
- **Key**: ``arbitrage:{opportunity id}`` (``arbitrage:SYMBOL:direction:opened_ms``).
- **Expiry**: timestamp + ``arb_ttl_s``, or the close of the opportunity if earlier.
- **Confidence**: age (older book) x depth (executable notional) x cross-exchange clock skew.
- **Details**: every :class:`ArbitrageOpportunity` field, plus ``opportunity_id``, ``event``
  (opened/updated), ``reason`` (new/upgrade/regrowth), ``peak_net_profit_percentage`` and
  ``confidence_factors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detector.analyzer import (
    Direction,
    OpportunityEvent,
    OpportunityEventKind,
    TrackedOpportunity,
)
from detector.book import SyncedBook
from detector.config import DetectorConfig
from detector.signals import confidence
from detector.signals.signal import (
    Signal,
    SignalReason,
    SignalStrength,
    SignalType,
    strength_for,
)

ZERO_THRESHOLD_BASE_PCT = 0.1
"""The net % that the strength multiples apply to when ``min_profit_pct`` is 0."""

_EPSILON = 1e-9  # float tolerance of the regrowth comparison (0.25 - 0.2 is 0.04999…)


def arbitrage_strength(net_pct: float, config: DetectorConfig) -> SignalStrength:
    """The strength of an opportunity with ``net_pct`` net profit (never below WEAK)."""
    rules = config.rules
    base = config.min_profit_pct if config.min_profit_pct > 0 else ZERO_THRESHOLD_BASE_PCT
    tiers = (0.0, rules.arb_moderate_multiple, rules.arb_strong_multiple)
    return strength_for(net_pct / base, tiers) or SignalStrength.WEAK


@dataclass(frozen=True, slots=True)
class _Signalled:
    """What the last signal about an opportunity said."""

    strength: SignalStrength
    net_pct: float
    timestamp: int


def signal_key(tracked: TrackedOpportunity) -> str:
    """The key of every signal about ``tracked``."""
    return f"{SignalType.ARBITRAGE.value}:{tracked.id}"


class ArbitrageDetector:
    """Turns OPENED/UPDATED/CLOSED opportunity events into deduplicated ARBITRAGE signals."""

    def __init__(self, config: DetectorConfig) -> None:
        self._config = config
        self._ttl_ms = round(config.rules.arb_ttl_s * 1000)
        self._quiet_ms = round(config.rules.arb_reopen_quiet_s * 1000)
        self._regrowth = config.rules.arb_regrowth_pct
        self._signalled: dict[str, _Signalled] = {}  # open opportunity id -> last signal about it
        self._last_by_pair: dict[tuple[str, Direction], _Signalled] = {}  # kept after close
        self.suppressed = 0

    @property
    def tracking(self) -> int:
        """Open opportunities with a signal on record."""
        return len(self._signalled)

    def on_events(
        self,
        events: list[OpportunityEvent],
        books: Sequence[SyncedBook],
        now_ms: int,
    ) -> list[Signal]:
        """Signals of the analyzer's events about one symbol; ``books``: its book on each venue."""
        signals: list[Signal] = []
        for event in events:
            tracked = event.tracked
            if event.kind is OpportunityEventKind.CLOSED:
                self._signalled.pop(tracked.id, None)
                continue
            pair = (tracked.symbol, tracked.direction)
            previous = self._signalled.get(tracked.id)
            if previous is None:
                recent = self._last_by_pair.get(pair)
                if recent is not None and now_ms - recent.timestamp < self._quiet_ms:
                    previous = recent  # a flicker: compare with what was said moments ago
            net = tracked.last.net_profit_percentage
            strength = arbitrage_strength(net, self._config)
            if previous is None:
                reason = SignalReason.NEW
            elif strength.rank > previous.strength.rank:
                reason = SignalReason.UPGRADE
            elif net - previous.net_pct >= self._regrowth - _EPSILON:
                reason = SignalReason.REGROWTH
            else:
                self.suppressed += 1
                self._signalled[tracked.id] = previous
                continue
            said = _Signalled(strength, net, now_ms)
            self._signalled[tracked.id] = said
            self._last_by_pair[pair] = said
            direction = tracked.direction
            buy, sell = (
                next(b for b in books if b.exchange is venue)
                for venue in (direction.buy_exchange, direction.sell_exchange)
            )
            signals.append(self._signal(event, strength, reason, buy, sell, now_ms))
        return signals

    def _signal(
        self,
        event: OpportunityEvent,
        strength: SignalStrength,
        reason: SignalReason,
        buy: SyncedBook,
        sell: SyncedBook,
        now_ms: int,
    ) -> Signal:
        tracked = event.tracked
        opportunity = tracked.last
        rules = self._config.rules
        stale_after_ms = self._config.stale_after_ms
        value, factors = confidence.combine(
            {
                "age": confidence.pair_age_factor(buy, sell, now_ms, stale_after_ms),
                "depth": confidence.depth_factor(
                    opportunity.notional, rules.confidence_depth_notional_usd
                ),
                "skew": confidence.skew_factor(
                    confidence.clock_skew_ms(buy, sell), rules.confidence_skew_ms
                ),
            }
        )
        details = opportunity.to_dict()
        details.update(
            {
                "opportunity_id": tracked.id,
                "event": event.kind.value,
                "reason": reason.value,
                "peak_net_profit_percentage": tracked.peak.net_profit_percentage,
                "confidence_factors": factors,
            }
        )
        return Signal(
            type=SignalType.ARBITRAGE,
            symbol=tracked.symbol,
            strength=strength,
            confidence=value,
            timestamp=now_ms,
            expires_at=now_ms + self._ttl_ms,
            key=signal_key(tracked),
            details=details,
        )
