"""Neutral text rendered as Telegram HTML or Discord markdown, and split within their limits.

Everything a user or an exchange wrote is escaped on the way, so it can never inject tags,
formatting or mentions. Long texts are split between lines, and an over-long line between its
characters, before rendering, so a chunk never breaks a tag or an entity and always stays
within the platform's limit.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from bot.messages.text import Line, Span, Style, Text

TELEGRAM_LIMIT = 4096  # characters of a message's text
DISCORD_LIMIT = 2000  # characters of a plain message


def _telegram_span(span: Span) -> str:
    body = html.escape(span.text, quote=False)
    match span.style:
        case Style.BOLD:
            return f"<b>{body}</b>"
        case Style.ITALIC:
            return f"<i>{body}</i>"
        case Style.CODE:
            return f"<code>{body}</code>"
    return body


_DISCORD_SPECIAL = re.compile(r"([\\*_~`|<>\[\]#])")
_DISCORD_LINE_START = re.compile(r"^(\s*)([-+]|\d+\.)(?=\s)")


def _discord_escape(text: str) -> str:
    # Backslash-escape markdown; break @everyone and <@id> mentions with a zero-width space.
    return _DISCORD_SPECIAL.sub(r"\\\1", text).replace("@", "@\u200b")


def _discord_span(span: Span) -> str:
    match span.style:
        case Style.BOLD:
            return f"**{_discord_escape(span.text)}**"
        case Style.ITALIC:
            return f"_{_discord_escape(span.text)}_"
        case Style.CODE:
            # Nothing escapes inside a code span: keep its delimiter out of it instead.
            return "`" + span.text.replace("`", "\u02cb").replace("@", "@\u200b") + "`"
    return _discord_escape(span.text)


def render_line_telegram(ln: Line) -> str:
    return "".join(_telegram_span(span) for span in ln)


def render_line_discord(ln: Line) -> str:
    rendered = "".join(_discord_span(span) for span in ln)
    # A line starting "- ", "+ " or "1. " would become a list item.
    return _DISCORD_LINE_START.sub(_escape_list_marker, rendered)


def _escape_list_marker(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker.endswith("."):
        return f"{indent}{marker[:-1]}\\."
    return f"{indent}\\{marker}"


def render_telegram(text: Text) -> str:
    """Telegram HTML (``parse_mode="HTML"``): only b, i and code tags; <, > and & escaped."""
    return "\n".join(render_line_telegram(ln) for ln in text)


def render_discord(text: Text) -> str:
    """Discord markdown, with every markdown special and mention escaped."""
    return "\n".join(render_line_discord(ln) for ln in text)


# -- splitting ----------------------------------------------------------------------------------


def text_length(text: str) -> int:
    """Length as the platforms count it, conservatively: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int) -> list[str]:
    """Split plain or rendered ``text`` into chunks of at most ``limit``, between lines.

    A line longer than ``limit`` is cut at its last space that fits (else anywhere), never
    inside an HTML tag or entity. Rendered lines keep their tags balanced only if split by
    :func:`render_chunks`, which cuts the neutral text instead; prefer it for markup.
    """
    if limit < 16:
        raise ValueError("limit too small to split on")
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for ln in text.split("\n"):
        pieces = [ln] if text_length(ln) <= limit else _cut_plain(ln, limit)
        for piece in pieces:
            n = text_length(piece)
            if current and size + 1 + n > limit:
                chunks.append("\n".join(current))
                current, size = [], 0
            size += n + (1 if current else 0)
            current.append(piece)
    if current:
        chunks.append("\n".join(current))
    return chunks


def _cut_plain(ln: str, limit: int) -> list[str]:
    pieces = []
    while text_length(ln) > limit:
        cut = _fit(ln, limit)
        space = ln.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space + 1
        # Never inside a tag or an entity: move back before an unclosed "<" or "&".
        opened = max(ln.rfind("<", 0, cut), ln.rfind("&", 0, cut))
        if opened > 0 and ln.find(">" if ln[opened] == "<" else ";", opened, cut) == -1:
            cut = opened
        pieces.append(ln[:cut])
        ln = ln[cut:]
    pieces.append(ln)
    return pieces


def _fit(text: str, limit: int) -> int:
    """The longest prefix length of ``text`` whose length is within ``limit`` (at least 1)."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_length(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def render_chunks(text: Text, render_line: Callable[[Line], str], limit: int) -> list[str]:
    """Render ``text`` into messages of at most ``limit``, splitting between lines.

    An over-long line is cut between characters of the neutral text, and each piece rendered
    on its own, so every chunk is valid markup.
    """
    rendered: list[str] = []
    for ln in text:
        out = render_line(ln)
        if text_length(out) <= limit:
            rendered.append(out)
        else:
            rendered.extend(_cut_line(ln, render_line, limit))
    return split_message("\n".join(rendered), limit)


def _cut_line(ln: Line, render_line: Callable[[Line], str], limit: int) -> list[str]:
    pieces: list[str] = []
    current: list[Span] = []
    queue = list(ln)
    while queue:
        span = queue.pop(0)
        if text_length(render_line((*current, span))) <= limit:
            current.append(span)
            continue
        # Take the longest prefix of this span that still fits beside the current spans.
        lo, hi = 0, len(span.text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if text_length(render_line((*current, Span(span.text[:mid], span.style)))) <= limit:
                lo = mid
            else:
                hi = mid - 1
        if lo == 0 and not current:
            lo = 1  # a single character that renders beyond the limit: emit it anyway
        if lo:
            current.append(Span(span.text[:lo], span.style))
        pieces.append(render_line(tuple(current)))
        current = []
        queue.insert(0, Span(span.text[lo:], span.style))
        if not queue[0].text:
            queue.pop(0)
    if current:
        pieces.append(render_line(tuple(current)))
    return pieces


def telegram_messages(text: Text) -> list[str]:
    return render_chunks(text, render_line_telegram, TELEGRAM_LIMIT)


def discord_messages(text: Text) -> list[str]:
    return render_chunks(text, render_line_discord, DISCORD_LIMIT)
