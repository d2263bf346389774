"""The signal model: what the aggregator emits and what every consumer receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1
"""Version of :meth:`Signal.to_dict`'s shape; bumped on any incompatible change."""


class SignalType(StrEnum):
    """The kinds of signal arbwatch emits."""

    ARBITRAGE = "arbitrage"
    SPREAD_ANOMALY = "spread_anomaly"
    VOLUME_SPIKE = "volume_spike"
    FUNDING_RATE_DIVERGENCE = "funding_rate_divergence"
    MOMENTUM_BREAKOUT = "momentum_breakout"


class SignalStrength(StrEnum):
    """How strong a signal is; ordered WEAK < MODERATE < STRONG."""

    WEAK = "weak"
    MODERATE = "moderate"
    STRONG = "strong"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {SignalStrength.WEAK: 0, SignalStrength.MODERATE: 1, SignalStrength.STRONG: 2}


class SignalReason(StrEnum):
    """Why a signal was emitted (``details["reason"]``)."""

    NEW = "new"  # an episode (an opportunity, an anomaly) starts
    UPGRADE = "upgrade"  # the episode reached a higher strength
    REGROWTH = "regrowth"  # arbitrage: net profit grew by arb_regrowth_pct over the last signal
    SIGN_FLIP = "sign_flip"  # funding: the other exchange now pays more


def strength_for(value: float, tiers: tuple[float, float, float]) -> SignalStrength | None:
    """The strength whose tier ``value`` reaches (weak, moderate, strong), or None below weak."""
    weak, moderate, strong = tiers
    if value >= strong:
        return SignalStrength.STRONG
    if value >= moderate:
        return SignalStrength.MODERATE
    if value >= weak:
        return SignalStrength.WEAK
    return None


@dataclass(frozen=True, slots=True)
class Signal:
    """One market signal. ``key`` identifies the episode it belongs to (used for dedup)."""

    type: SignalType
    symbol: str
    strength: SignalStrength
    confidence: float
    timestamp: int  # ms, detector clock (recording time in replay)
    expires_at: int  # ms, same clock
    key: str
    details: dict[str, Any] = field(default_factory=dict)

    def is_expired(self, now_ms: int) -> bool:
        return now_ms >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form (schema version :data:`SCHEMA_VERSION`)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "type": self.type.value,
            "symbol": self.symbol,
            "strength": self.strength.value,
            "confidence": round(self.confidence, 4),
            "timestamp": self.timestamp,
            "expires_at": self.expires_at,
            "key": self.key,
            "details": self.details,
        }
