"""A deterministic market model that speaks Binance's, Bybit's and OKX's wire formats.

``instruments`` (tick/lot sizes, contract values, wire precision) → ``book`` (one exchange's
levels and diffs) → ``state`` (a symbol's fair price, books and ids; ``okx_state`` OKX's own) →
``market`` (:class:`MarketModel`: what the exchanges publish, and their answers to snapshot
requests; ``market_okx`` OKX's part) → ``session`` (a scripted client: recordings) and
``timeline`` (the market pre-generated as wire frames, with snapshots to sync from).
``scenarios`` scripts what happens when; ``wire`` and ``wire_okx`` build the frames. All of it
is pure; the ``server*`` modules serve it over loopback sockets (``arbwatch simulate``;
``server_push`` pushes a timeline at a set rate, for load tests).
"""

from detector.simulator.market import MarketModel
from detector.simulator.scenarios import SCENARIOS, Scenario, build_scenario
from detector.simulator.session import RecordingSession, generate_records
from detector.simulator.state import FeedRates
from detector.simulator.timeline import Timeline, build_timeline
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
    "Timeline",
    "build_scenario",
    "build_timeline",
    "generate_records",
]
