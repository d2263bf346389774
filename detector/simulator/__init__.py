"""A deterministic market model that speaks Binance's, Bybit's and OKX's wire formats.

``instruments`` (tick/lot sizes, contract values, wire precision) → ``book`` (one exchange's
levels and diffs) → ``state`` (a symbol's fair price, books and ids; ``okx_state`` OKX's own) →
``market`` (:class:`MarketModel`: what the exchanges publish, and their answers to snapshot
requests; ``market_okx`` OKX's part) → ``session`` (a scripted client: recordings).
``scenarios`` scripts what happens when; ``wire`` and ``wire_okx`` build the frames. All of it
is pure; the ``server*`` modules serve it over loopback sockets (``arbwatch simulate``).
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
