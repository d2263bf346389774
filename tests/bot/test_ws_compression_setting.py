"""WS_COMPRESSION: none or deflate, any case; anything else is named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import SettingsError


@pytest.mark.parametrize(("value", "expected"), [("none", "none"), (" Deflate ", "deflate")])
def test_the_setting_reaches_the_detector_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("WS_COMPRESSION", value)
    settings = load_settings(str(tmp_path / "missing.env"))
    assert settings.ws_compression == expected
    assert settings.detector_config().ws_compression == expected


def test_the_default_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WS_COMPRESSION", raising=False)
    assert load_settings(str(tmp_path / "missing.env")).detector_config().ws_compression == "none"


def test_a_bad_value_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WS_COMPRESSION", "gzip")
    with pytest.raises(SettingsError) as caught:
        load_settings(str(tmp_path / "missing.env"))
    assert str(caught.value).splitlines()[1:] == [
        "  WS_COMPRESSION: Input should be 'none' or 'deflate' (got 'gzip')"
    ]
