"""Rendering neutral text to Telegram HTML and Discord markdown, and splitting it in limits."""

from __future__ import annotations

import random
import re

import pytest

from bot.messages import (
    DISCORD_LIMIT,
    TELEGRAM_LIMIT,
    Line,
    bold,
    code,
    discord_messages,
    italic,
    line,
    plain_text,
    render_chunks,
    render_discord,
    render_line_telegram,
    render_telegram,
    split_message,
    telegram_messages,
    text_length,
)

HOSTILE = "<script>alert('x')</script> & *bold* _it_ [a](http://x) ~s~ `c` |sp| @everyone <@1> #h"
_TAG = re.compile(r"</?([a-z]+)[^>]*>")


def test_telegram_escapes_everything_and_uses_only_its_own_tags() -> None:
    text = (line(HOSTILE, bold(HOSTILE)), line(italic(HOSTILE), code(HOSTILE)))
    html = render_telegram(text)
    assert "<script>" not in html
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; *bold*" in html
    assert set(_TAG.findall(html)) == {"b", "i", "code"}
    assert html.count("<b>") == html.count("</b>") == 1
    # Unescaping gives back exactly the text.
    stripped = _TAG.sub("", html).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert stripped == plain_text(text)


@pytest.mark.parametrize(
    ("raw", "rendered"),
    [
        ("*_[]", r"\*\_\[\]"),
        ("a*b_c~d`e|f", r"a\*b\_c\~d\`e\|f"),
        ("> quote", r"\> quote"),
        ("# head", r"\# head"),
        ("- item", r"\- item"),
        ("12. item", r"12\. item"),
        ("@everyone hi", "@\u200beveryone hi"),
        ("<@123>", "\\<@\u200b123\\>"),
        (r"back\slash", r"back\\slash"),
        ("0.15 % (net)", "0.15 % (net)"),
    ],
)
def test_discord_escapes_markdown_and_mentions(raw: str, rendered: str) -> None:
    assert render_discord((line(raw),)) == rendered


def test_discord_styles_and_code_spans_cannot_be_broken_out_of() -> None:
    rendered = render_discord((line(bold("a*b"), " ", italic("x_y"), " ", code("x`y @here")),))
    assert rendered == "**a\\*b** _x\\_y_ `x\u02cby @\u200bhere`"


def test_split_message_keeps_whole_lines_within_the_limit() -> None:
    rng = random.Random(7)
    lines = ["x" * rng.randint(0, 120) for _ in range(400)]
    text = "\n".join(lines)
    for limit in (TELEGRAM_LIMIT, DISCORD_LIMIT, 500):
        chunks = split_message(text, limit)
        assert all(text_length(chunk) <= limit for chunk in chunks)
        assert "\n".join(chunks) == text  # lines kept whole and in order
        assert len(chunks) == len(split_message(text, limit))
    assert split_message("short", 100) == ["short"]


def test_split_message_cuts_one_over_long_line_at_spaces_and_never_in_an_entity() -> None:
    words = " ".join(f"word{i}" for i in range(1000))
    chunks = split_message(words, 300)
    assert all(len(chunk) <= 300 for chunk in chunks)
    assert "".join(chunks) == words
    assert all(chunk.endswith(" ") for chunk in chunks[:-1])  # cut after a space
    entities = "&amp;" * 200  # one line, no spaces
    for chunk in split_message(entities, 103):
        assert len(chunk) <= 103
        assert chunk.count("&") == chunk.count(";")  # no entity cut in half
    emoji = "🚀" * 3000  # two UTF-16 units each
    assert all(text_length(chunk) <= 4096 for chunk in split_message(emoji, 4096))


def test_render_chunks_splits_neutral_text_so_markup_stays_balanced() -> None:
    # One line whose escaping grows it past the limit: "&" renders as "&amp;".
    text = (line("start"), line(bold("&" * 1000), " tail ", code("<" * 500)), line("end"))
    chunks = render_chunks(text, render_line_telegram, 1000)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk) <= 1000
        assert chunk.count("<b>") == chunk.count("</b>")
        assert chunk.count("<code>") == chunk.count("</code>")
        assert chunk.count("&") == chunk.count(";")
    joined = "".join(chunks).replace("</b><b>", "").replace("</code><code>", "")
    assert joined.count("&amp;") == 1000 and joined.count("&lt;") == 500
    big: tuple[Line, ...] = tuple(line(f"line {i} ", bold("*_" * 30)) for i in range(300))
    assert all(len(chunk) <= DISCORD_LIMIT for chunk in discord_messages(big))
    assert all(len(chunk) <= TELEGRAM_LIMIT for chunk in telegram_messages(big))
