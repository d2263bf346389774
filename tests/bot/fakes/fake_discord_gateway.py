"""The gateway of the fake Discord server: one websocket endpoint for the real discord.py client.

``Gateway`` says HELLO, answers IDENTIFY with READY, ACKs heartbeats, RESUMEs a session on a new
socket (keeping its sequence), sends RECONNECT on request and dispatches events over the live
session. Waits use ``tests.bot.waits.Pulse`` instead of polling sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.bot.waits import Pulse

WAIT_S = 10.0  # bound on the fake's own waits (a client to connect, the bot to answer)
HEARTBEAT_MS = 41_250


@dataclass(eq=False)
class Session:
    """A gateway session; a RESUME moves it to a new socket and keeps the sequence."""

    id: str
    ws: web.WebSocketResponse
    seq: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        async with self.lock:  # sequence numbers must reach the client in order
            self.seq += 1
            await _send(self.ws, {"op": 0, "t": event, "s": self.seq, "d": data})


async def _send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    # TEXT frames: discord.py inflates only binary ones (it asks for zlib-stream, needs none).
    await ws.send_str(json.dumps(frame))


class Gateway:
    """Gateway sessions for one bot; ``handle`` serves each websocket connection."""

    def __init__(
        self,
        accepts: Callable[[Any], bool],
        ready: Callable[[str], dict[str, Any]],
    ) -> None:
        """``accepts(token)`` checks IDENTIFY and RESUME; ``ready(session_id)`` is READY's data."""
        self._accepts, self._ready = accepts, ready
        self.identified = asyncio.Event()
        self.intents: int | None = None  # from the last IDENTIFY
        self.resumes = 0
        self._sessions: dict[str, Session] = {}
        self._live: Session | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._pulse = Pulse()

    async def close(self) -> None:
        """Close every gateway socket (1001 going away)."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"fake Discord stopping")

    async def reconnect(self, timeout: float = WAIT_S) -> None:  # noqa: ASYNC109
        """Send RECONNECT (op 7) and wait until the client has RESUMEd its session."""
        session, resumes = await self.live_session(timeout), self.resumes
        await _send(session.ws, {"op": 7, "d": None, "s": None, "t": None})
        async with asyncio.timeout(timeout):
            while self.resumes == resumes:
                await self._pulse.wait()

    async def live_session(self, timeout: float = WAIT_S) -> Session:  # noqa: ASYNC109
        """The session of the connected client, once there is one."""
        try:
            async with asyncio.timeout(timeout):
                while self._live is None or self._live.ws.closed:
                    await self._pulse.wait()
        except TimeoutError:
            raise TimeoutError(f"no discord.py client on the gateway within {timeout}s") from None
        return self._live

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        session: Session | None = None
        try:
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Error while decoding payload.")
                return ws
            hello = {"heartbeat_interval": HEARTBEAT_MS, "_trace": ["fake-discord-gateway"]}
            await _send(ws, {"op": 10, "d": hello, "s": None, "t": None})
            async for msg in ws:
                frame = None
                with contextlib.suppress(ValueError):
                    frame = json.loads(msg.data) if msg.type is WSMsgType.TEXT else None
                if not isinstance(frame, dict):
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                session = await self._on_frame(ws, session, frame.get("op"), frame.get("d"))
        finally:
            self._sockets.discard(ws)
            if self._live is not None and self._live.ws is ws:
                self._live = None
        return ws

    async def _on_frame(
        self, ws: web.WebSocketResponse, session: Session | None, op: Any, data: Any
    ) -> Session | None:
        data = data if isinstance(data, dict) else {}
        token_ok = self._accepts(data.get("token"))
        if op == 1:  # heartbeat
            async with session.lock if session else contextlib.nullcontext():
                await _send(ws, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2 and session is not None:
            await ws.close(code=4005, message=b"Already authenticated.")
        elif op == 2 and not token_ok:
            await ws.close(code=4004, message=b"Authentication failed.")
        elif op == 2:
            self.intents = data.get("intents")
            session = Session(f"fake-session-{len(self._sessions) + 1}", ws)
            self._sessions[session.id] = session
            ready = self._ready(session.id)
            if "shard" in data:
                ready["shard"] = data["shard"]
            await session.dispatch("READY", ready)
            self._go_live(session)
        elif op == 6:  # resume
            found = self._sessions.get(str(data.get("session_id")))
            if found is None or not token_ok:
                await _send(ws, {"op": 9, "d": False, "s": None, "t": None})  # start afresh
            else:
                found.ws, session = ws, found
                await found.dispatch("RESUMED", {"_trace": ["fake-discord-gateway"]})
                self.resumes += 1
                self._go_live(found)
        elif op not in (3, 4, 8):  # presence, voice state and member requests need no answer
            await ws.close(code=4001, message=b"Unknown opcode.")
        return session

    def _go_live(self, session: Session) -> None:
        self._live = session
        self.identified.set()
        self._pulse.fire()
