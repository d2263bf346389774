"""The REST plumbing of the fake Discord server: requests in, Discord-shaped answers out.

``RestApi`` routes /api/v10 calls to handlers, checks the bot token, answers injected faults
first and records every request and every refusal. Bodies are decoded as discord.py sends them
(JSON, or multipart with ``payload_json`` and ``files[n]``) and answered with the headers it
reads: exact ``application/json``, ``X-RateLimit-*`` buckets, and ``Via`` on a 429.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from tests.bot.fakes.fake_discord_rules import INVALID_JSON, ApiError, Upload, form_error

_NO_AUTH = re.compile(r"(interactions|webhooks)/.*")  # the token in the path is the credential


@dataclass(slots=True)
class Call:
    """One REST request, decoded: path parameters, JSON body (or payload_json) and files."""

    params: dict[str, str]
    body: Any
    uploads: list[Upload]
    query: dict[str, str]


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(slots=True)
class _Fault:
    method: str
    pattern: re.Pattern[str]
    error: ApiError
    times: int


class RestApi:
    """Routes (method, path regex, handler) below /api/v10/, guarded by ``authorized``."""

    def __init__(
        self,
        routes: Iterable[tuple[str, str, Handler]],
        authorized: Callable[[str | None], bool],
    ) -> None:
        """``authorized(header)`` judges the Authorization header of calls that need one."""
        self.requests: list[tuple[str, str]] = []  # (method, path below /api/v10/)
        self.rejected: list[tuple[str, dict[str, Any]]] = []  # the fake's own refusals
        self._routes = [(m, re.compile(p), h) for m, p, h in routes]
        self._authorized = authorized
        self._faults: list[_Fault] = []

    def add_fault(self, method: str, path_pattern: str, error: ApiError, times: int) -> None:
        """Answer the next ``times`` calls whose path fully matches ``path_pattern``: ``error``."""
        self._faults.append(_Fault(method.upper(), re.compile(path_pattern), error, times))

    async def handle(self, request: web.Request) -> web.Response:
        path, method = request.match_info["path"], request.method
        self.requests.append((method, path))
        fault = self._take_fault(method, path)
        if fault is not None:  # injected: not one of the fake's own refusals
            return _response(fault.body(), path, fault.status)
        try:
            handler, params = self._route(method, path)
            authorized = self._authorized(request.headers.get("Authorization"))
            if not _NO_AUTH.fullmatch(path) and not authorized:
                raise ApiError(401, 0, "401: Unauthorized")
            body, uploads = await _read_body(request)
            result = await handler(Call(params, body, uploads, dict(request.query)))
        except ApiError as err:
            self.rejected.append((path, err.body()))
            return _response(err.body(), path, err.status)
        return _response(result, path, 200 if result is not None else 204)

    def _route(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = False
        for route_method, pattern, handler in self._routes:
            if (match := pattern.fullmatch(path)) is not None:
                if route_method == method:
                    return handler, {k: v for k, v in match.groupdict().items() if v is not None}
                allowed = True
        if allowed:
            raise ApiError(405, 0, "405: Method Not Allowed")
        raise ApiError(404, 0, "404: Not Found")

    def _take_fault(self, method: str, path: str) -> ApiError | None:
        for fault in self._faults:
            if fault.method == method and fault.pattern.fullmatch(path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault.error
        return None


def message_body(body: Any) -> dict[str, Any]:
    """A message body (or callback ``data``): a JSON object, or nothing."""
    if body is not None and not isinstance(body, dict):
        raise form_error([], "DICT_TYPE_CONVERT")
    return body or {}


async def _read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """JSON, or multipart with a ``payload_json`` part and ``files[n]`` parts (discord.py's)."""
    body: Any = None
    uploads: list[Upload] = []
    try:
        if request.content_type == "application/json" and request.body_exists:
            body = await request.json()
        elif request.content_type == "multipart/form-data":
            # Read parts ourselves: request.post() spools files to temporary files left open.
            async for part in await request.multipart():
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                elif (index := re.fullmatch(r"files\[(\d+)\]", part.name)) is not None:
                    data = bytes(await part.read())
                    uploads.append(Upload(int(index[1]), part.filename or "file", data))
    except ValueError as exc:
        raise ApiError(400, INVALID_JSON, "The request body contains invalid JSON.") from exc
    return body, uploads


def _response(body: Any, path: str, status: int) -> web.Response:
    retry_after = body.get("retry_after", 1.0) if status == 429 else 1.0
    # One bucket per route shape, as Discord hashes them; discord.py keys its limits on it.
    headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0" if status == 429 else "4",
               "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
               "X-RateLimit-Reset-After": f"{retry_after:.3f}",
               "X-RateLimit-Bucket": re.sub(r"\d+", "id", path.split("/messages/")[0])}  # fmt: skip
    if status == 429:
        # Without Via, discord.py takes a 429 for a Cloudflare ban and raises at once.
        headers.update({"Via": "1.1 google", "X-RateLimit-Scope": "user",
                        "Retry-After": str(max(1, round(retry_after)))})  # fmt: skip
    if status == 204:
        return web.Response(status=204, headers=headers)
    # Exactly "application/json": discord.py reads any other type (even the
    # "; charset=utf-8" that web.json_response adds) as a plain-text body.
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )
