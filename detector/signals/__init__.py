"""The five signal detectors and the signal model they share."""

from detector.signals.signal import SCHEMA_VERSION, Signal, SignalStrength, SignalType

__all__ = ["SCHEMA_VERSION", "Signal", "SignalStrength", "SignalType"]
