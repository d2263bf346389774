"""A deterministic market model that speaks both exchanges' wire formats (pure, no I/O).

``instruments`` (tick/lot sizes, wire precision) → ``book`` (one exchange's levels and diffs) →
``state`` (a symbol's fair price, books and ids) → ``market`` (:class:`MarketModel`: what the
exchanges publish, and their answers to snapshot requests) → ``session`` (a scripted client:
recordings). ``scenarios`` scripts what happens when; ``wire`` builds the frames.
"""

from detector.simulator.market import MarketModel
from detector.simulator.scenarios import SCENARIOS, Scenario, build_scenario
from detector.simulator.session import RecordingSession, generate_records
from detector.simulator.state import FeedRates
from detector.simulator.wire import Disconnect, Frame, Output

__all__ = [
    "SCENARIOS",
    "Disconnect",
    "FeedRates",
    "Frame",
    "MarketModel",
    "Output",
    "RecordingSession",
    "Scenario",
    "build_scenario",
    "generate_records",
]
