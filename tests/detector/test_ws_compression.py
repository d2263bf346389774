"""The WebSocket compression setting: validated in the config, passed to every connection."""

from __future__ import annotations

import pytest

from detector.config import DetectorConfig
from detector.engine import Detector
from detector.errors import ConfigError
from detector.models import Exchange


def test_an_unknown_compression_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ws_compression must be one of none, deflate"):
        DetectorConfig(ws_compression="gzip")  # type: ignore[arg-type]


@pytest.mark.parametrize("compression", ["none", "deflate"])
def test_every_feed_connection_gets_the_compression(compression: str) -> None:
    config = DetectorConfig(
        symbols=("BTCUSDT",),
        exchanges=tuple(Exchange),
        ws_compression=compression,  # type: ignore[arg-type]
    )
    detector = Detector(config, validate_symbols=False)
    feeds = [detector._make_feed(exchange, ["BTCUSDT"]) for exchange in config.exchanges]
    connections = [c for feed in feeds for c in feed.connections]
    assert len(connections) == 4  # Binance public and market, Bybit, OKX
    assert {c.compression for c in connections} == {compression}  # type: ignore[attr-defined]
