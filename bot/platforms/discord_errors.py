"""discord.py's failures in arbwatch's words: why a start failed (and whether to try again),
and what a refused send means for the outbox (:class:`~bot.errors.SendError`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import aiohttp
import discord

from bot.errors import (
    FloodLimited,
    FrontendError,
    PermanentSendError,
    SendError,
    TransientSendError,
)

# Gateway close codes that retrying cannot fix: authentication failed, invalid shard, sharding
# required, invalid API version, invalid or disallowed intents.
FINAL_CLOSES = frozenset({4004, 4010, 4011, 4012, 4013, 4014})


def start_error(
    exc: BaseException, *, api_url: str, gateway_url: str, waited: str, connecting: bool
) -> BaseException:
    """Why starting failed, in words (never with the token); all but a rejected token, a
    refusal of ours (4xx) and a gateway closing on authentication may pass, and retry.

    ``connecting``: the gateway step had begun (else: logging in or registering commands).
    """
    if isinstance(exc, FrontendError):
        return exc
    if isinstance(exc, discord.LoginFailure):
        return FrontendError("discord", "DISCORD_BOT_TOKEN was rejected (401 Unauthorized)")
    if isinstance(exc, TimeoutError):
        if connecting:
            reason = f"the gateway {gateway_url} was not ready {waited}"
        else:
            reason = f"no answer from {api_url} {waited}"
        return FrontendError("discord", reason, retry=True)
    if isinstance(exc, discord.HTTPException):
        transient = exc.status >= 500 or exc.status == 429
        reason = f"{exc.status} {exc.text[:200]}".strip()
        return FrontendError("discord", reason, retry=transient)
    if isinstance(exc, discord.ConnectionClosed):
        return FrontendError("discord", describe(exc), retry=exc.code not in FINAL_CLOSES)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return FrontendError("discord", f"cannot reach {api_url}: {exc}", retry=True)
    return exc


def gateway_error(task: asyncio.Task[None], gateway_url: str) -> FrontendError:
    """Why the gateway connection ended before READY."""
    failure = None if task.cancelled() else task.exception()
    if failure is None:
        return FrontendError("discord", "the gateway closed before READY", retry=True)
    # discord.py 2.7 trips over its own missing socket (AttributeError) after a failed
    # first connect; what happened is the network error it was handling.
    cause = failure.__context__
    if isinstance(cause, aiohttp.ClientError | OSError):
        failure = cause
    final = isinstance(failure, discord.ConnectionClosed) and failure.code in FINAL_CLOSES
    return FrontendError(
        "discord",
        f"cannot connect to the gateway {gateway_url}: {describe(failure)}",
        retry=not final,
    )


@contextlib.contextmanager
def send_errors(destination: str, *, unreachable: type[SendError]) -> Iterator[None]:
    """discord.py's errors as the outbox's :class:`~bot.errors.SendError` subclasses;
    ``unreachable`` is what a 403 or 404 means for this call."""
    try:
        yield
    except discord.RateLimited as exc:  # a wait beyond max_ratelimit_timeout
        raise FloodLimited(exc.retry_after, destination) from exc
    except (discord.Forbidden, discord.NotFound) as exc:
        raise unreachable(f"Discord {exc.code}: {exc.text or exc.status}") from exc
    except discord.DiscordServerError as exc:
        raise TransientSendError(f"Discord {exc.status}: {exc.text[:200]}") from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise FloodLimited(1.0, destination) from exc
        raise PermanentSendError(f"Discord {exc.status} {exc.code}: {exc.text[:200]}") from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise TransientSendError(f"network: {exc!r}") from exc


def describe(exc: BaseException) -> str:
    if isinstance(exc, discord.ConnectionClosed):
        return f"the gateway closed the connection (code {exc.code})"
    return f"{type(exc).__name__}: {exc}"[:300]
