"""Discord alert embeds: the figures users need, a colour per strength, Discord's limits kept."""

from __future__ import annotations

import pytest

from bot.platforms.discord_embeds import (
    CLOSED_COLOR,
    DESCRIPTION_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FIELDS_LIMIT,
    FOOTER_LIMIT,
    STRENGTH_COLORS,
    TITLE_LIMIT,
    TOTAL_LIMIT,
    AlertEmbed,
    EmbedField,
    alert_embed,
    broadcast_embed,
    fit_embed,
)
from detector.signals import SignalStrength, SignalType
from tests.bot.factories import T0, arbitrage, funding, momentum, other


def test_an_arbitrage_embed_carries_every_figure() -> None:
    signal = arbitrage(0.25, expected_profit=18.4, max_volume=0.5)
    embed = alert_embed(signal, T0 + 1_200)
    fields = {f.name: f.value for f in embed.fields}
    assert embed.title == "💱 BTCUSDT arbitrage · ▲▲ MODERATE"
    assert embed.color == STRENGTH_COLORS[SignalStrength.MODERATE]
    assert "Buy on Binance, sell on Bybit" in embed.description
    assert "**0.250 %**" in embed.description
    assert fields["Direction"] == "Binance → Bybit"
    assert fields["Buy"] == "Binance `64,123.5`"
    assert fields["Sell"].startswith("Bybit `")
    assert fields["Net after fees"] == "0.250 %"
    assert fields["Gross"] == "0.355 %"
    assert fields["Max volume"] == "0.5 BTC (≈ 32,062 USDT)"
    assert fields["Expected profit"] == "18.40 USDT"
    assert fields["Confidence"] == "88 %"
    assert fields["Age"] == "1.2 s"
    assert embed.timestamp_ms == T0
    assert embed.size <= TOTAL_LIMIT


def test_an_okx_arbitrage_embed_names_both_venues() -> None:
    embed = alert_embed(arbitrage(0.25, direction="buy_bybit_sell_okx"), T0)
    fields = {f.name: f.value for f in embed.fields}
    assert "Buy on Bybit, sell on OKX" in embed.description
    assert fields["Direction"] == "Bybit → OKX"
    assert fields["Buy"] == "Bybit `64,123.5`" and fields["Sell"].startswith("OKX `")


def test_a_funding_embed_names_the_highest_and_lowest_venue() -> None:
    embed = alert_embed(funding({"binance": 0.01, "bybit": 0.03, "okx": 0.06}), T0)
    fields = {f.name: f.value for f in embed.fields}
    assert (fields["Highest funding"], fields["Lowest funding"]) == ("OKX", "Binance")
    assert "OKX **0.0600 %** · Bybit **0.0300 %** · Binance **0.0100 %**" in embed.description
    old = {
        f.name: f.value for f in alert_embed(other(SignalType.FUNDING_RATE_DIVERGENCE), T0).fields
    }
    assert (old["Highest funding"], old["Lowest funding"]) == ("Bybit", "Binance")


def test_a_momentum_embed_names_its_venue_and_the_others_mids() -> None:
    embed = alert_embed(momentum("okx", {"binance": 64_480.0, "bybit": 64_495.5}), T0)
    assert {f.name: f.value for f in embed.fields}["Exchange"] == "OKX"
    assert "Binance mid `64,480.0` · Bybit mid `64,495.5`" in embed.description


@pytest.mark.parametrize("strength", list(SignalStrength))
def test_the_colour_follows_the_strength(strength: SignalStrength) -> None:
    embed = alert_embed(other(SignalType.VOLUME_SPIKE, strength), T0)
    assert embed.color == STRENGTH_COLORS[strength]
    assert len(set(STRENGTH_COLORS.values())) == 3


@pytest.mark.parametrize("kind", [t for t in SignalType if t is not SignalType.ARBITRAGE])
def test_other_types_describe_their_figures(kind: SignalType) -> None:
    embed = alert_embed(other(kind), T0 + 500)
    assert "BTCUSDT" in embed.title and embed.description
    names = [f.name for f in embed.fields]
    assert names[-2:] == ["Confidence", "Age"]
    assert " nan" not in embed.description.lower()


def test_broadcast_text_cannot_mention_or_format() -> None:
    embed = broadcast_embed("Maintenance at 12:00 @everyone **now**\n- line two")
    assert embed.title == "📣 Announcement"
    assert "@everyone" not in embed.description  # broken by a zero-width space
    assert "\\*\\*now\\*\\*" in embed.description
    assert "\\- line two" in embed.description


def test_fit_embed_keeps_every_limit() -> None:
    huge = AlertEmbed(
        title="t" * 1000,
        description="d" * 10_000,
        color=0,
        fields=tuple(EmbedField("n" * 300, "v" * 2000) for _ in range(30)),
        footer="f" * 3000,
    )
    fitted = fit_embed(huge)
    assert len(fitted.title) == TITLE_LIMIT and fitted.title.endswith("…")
    assert len(fitted.description) <= DESCRIPTION_LIMIT
    assert len(fitted.footer) == FOOTER_LIMIT
    assert len(fitted.fields) <= FIELDS_LIMIT
    assert all(len(f.name) <= FIELD_NAME_LIMIT for f in fitted.fields)
    assert all(len(f.value) <= FIELD_VALUE_LIMIT for f in fitted.fields)
    assert fitted.size <= TOTAL_LIMIT


def test_fit_embed_fills_empty_fields_and_leaves_small_embeds_alone() -> None:
    small = AlertEmbed("title", "body", 1, (EmbedField("", ""),))
    assert fit_embed(small).fields == (EmbedField("-", "-"),)
    fine = AlertEmbed("title", "body", 1, (EmbedField("a", "b", inline=False),), footer="x")
    assert fit_embed(fine) == fine


def test_a_closed_alert_is_greyed_and_says_how_it_ended() -> None:
    embed = alert_embed(arbitrage(0.25), T0 + 300, closed_after_ms=4_200, peak_net_pct=0.31)
    assert embed.title.endswith(" · CLOSED") and embed.color == CLOSED_COLOR
    assert embed.fields[0] == EmbedField("Closed", "after 4.2 s · peak net 0.310 %", inline=False)
    assert embed.fields[-1] == EmbedField("Age", "300 ms")  # as it was when sent
