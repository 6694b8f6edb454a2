"""A scripted AMI peer for the tests: a real TCP server on 127.0.0.1 replaying Asterisk 20.

It speaks the protocol the way Asterisk does (banner line, CRLF framing, a response per
action with the client's ActionID, events interleaved) and replays the transcripts in
tests/fixtures/ami/ (copied unchanged from a real Asterisk 20.20.1): when the client
sends an action, the peer sends what Asterisk sent after the recorded action of that
name, with every recorded ActionID rewritten to the one the client used. Faults on
demand: a refused login (then the socket closes, as Asterisk does), a link dropped
after so many bytes, a slow peer (bytes dribbled out), a peer that ignores Pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
BANNER = b"Asterisk Call Manager/9.0.0\r\n"
_ACTION_ID = re.compile(rb"^ActionID: ([^\r\n]*)\r\n", re.MULTILINE)


def headers(raw: bytes) -> dict[str, str]:
    """The headers of one raw message (first value of a repeated key)."""
    fields: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep and key not in fields:
            fields[key] = value
    return fields


@dataclass
class Step:
    """One recorded client action and the server bytes that followed it."""

    action: dict[str, str]
    raw: bytes
    reply: bytes = b""


@dataclass
class Transcript:
    """A NAME.txt capture: banner, then the steps in order."""

    banner: bytes
    steps: list[Step] = field(default_factory=list)

    @classmethod
    def load(cls, name: str) -> Transcript:
        """Parse tests/fixtures/ami/NAME.txt (both directions interleaved)."""
        data = (FIXTURES / f"{name}.txt").read_bytes()
        banner, _, rest = data.partition(b"\r\n")
        transcript = cls(banner + b"\r\n")
        for block in rest.split(b"\r\n\r\n"):
            if not block:
                continue
            raw = block + b"\r\n\r\n"
            if block.startswith(b"Action: "):
                transcript.steps.append(Step(headers(raw), raw))
            elif transcript.steps:
                transcript.steps[-1].reply += raw
        return transcript

    def server_bytes(self) -> bytes:
        """Everything the server sent (for checking against NAME.rx.txt)."""
        return self.banner + b"".join(step.reply for step in self.steps)

    def client_bytes(self) -> bytes:
        """Everything the client sent (for checking against NAME.tx.txt)."""
        return b"".join(step.raw for step in self.steps)


class AmiPeer:
    """An AMI server on an ephemeral 127.0.0.1 port; use as ``async with AmiPeer(...)``."""

    def __init__(
        self,
        transcript: Transcript | None = None,
        *,
        username: str = "admin",
        secret: str = "amipass",
        answer_pings: bool = True,
        drop_after: int | None = None,
        drop_connections: int = 1,
        chunk: int | None = None,
        delay: float = 0.0,
        reuse_steps: bool = False,
    ):
        self.transcript = transcript
        self.username, self.secret = username, secret
        self.answer_pings = answer_pings
        self.drop_after, self.drop_connections = drop_after, drop_connections
        self.chunk, self.delay = chunk, delay
        self.reuse_steps = reuse_steps  # every Originate gets the recorded answer again
        self.received: list[bytes] = []
        self.connections = 0
        self.logins = 0
        self.login_attempts: list[float] = []
        self.pings = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The ami_url a client uses to reach this peer with the right secret."""
        return f"ami://{self.username}:{self.secret}@127.0.0.1:{self.port}"

    def url_with(self, secret: str) -> str:
        """The ami_url with another secret."""
        return f"ami://{self.username}:{secret}@127.0.0.1:{self.port}"

    def actions(self, name: str) -> list[bytes]:
        """The raw bytes of every received action called ``name``."""
        return [raw for raw in self.received if headers(raw).get("Action") == name]

    async def __aenter__(self) -> AmiPeer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    def drop_all(self) -> None:
        """Close every open connection now (an Asterisk restart)."""
        for writer in list(self._writers):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        session = _Session(self, writer, self.connections)
        self._writers.add(writer)
        try:
            await session.send(self.transcript.banner if self.transcript else BANNER)
            buffer = b""
            while not writer.is_closing():
                data = await reader.read(65536)
                if not data:
                    break
                buffer += data
                while b"\r\n\r\n" in buffer:
                    raw, _, buffer = buffer.partition(b"\r\n\r\n")
                    if not await session.handle(raw + b"\r\n\r\n"):
                        return
        except (ConnectionError, _Dropped):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class _Dropped(Exception):
    pass


class _Session:
    def __init__(self, peer: AmiPeer, writer: asyncio.StreamWriter, number: int):
        self.peer, self.writer = peer, writer
        self.ids: dict[bytes, bytes] = {}
        self.used: set[int] = set()
        self.sent = 0
        self.drop_at = peer.drop_after if number <= peer.drop_connections else None

    async def handle(self, raw: bytes) -> bool:
        """Answer one action; False once the connection must close."""
        peer = self.peer
        peer.received.append(raw)
        action = headers(raw)
        name = action.get("Action", "")
        action_id = action.get("ActionID", "")
        if name == "Login":
            peer.login_attempts.append(time.monotonic())
            if action.get("Username") != peer.username or action.get("Secret") != peer.secret:
                await self.send(_response(action_id, "Error", "Message: Authentication failed"))
                return False
            peer.logins += 1
        if name == "Ping":
            peer.pings += 1
            if not peer.answer_pings:
                return True
        step = self._step(name)
        if step is not None:
            recorded = step.action.get("ActionID", "")
            self.ids[recorded.encode()] = action_id.encode()
            await self.send(self._rewrite(step.reply))
        elif name == "Ping":
            await self.send(_response(action_id, "Success", "Ping: Pong"))
        elif name == "Login":
            await self.send(_response(action_id, "Success", "Message: Authentication accepted"))
        elif name == "Logoff":
            await self.send(_response(action_id, "Goodbye", "Message: Thanks for all the fish."))
        else:
            await self.send(_response(action_id, "Error", "Message: Invalid/unknown command"))
        return name != "Logoff"

    def _step(self, name: str) -> Step | None:
        steps = self.peer.transcript.steps if self.peer.transcript else []
        for index, step in enumerate(steps):
            fresh = index not in self.used or self.peer.reuse_steps
            if fresh and step.action.get("Action") == name:
                self.used.add(index)
                return step
        return None

    def _rewrite(self, data: bytes) -> bytes:
        def swap(match: re.Match[bytes]) -> bytes:
            return b"ActionID: " + self.ids.get(match.group(1), match.group(1)) + b"\r\n"

        return _ACTION_ID.sub(swap, data)

    async def send(self, data: bytes) -> None:
        """Write ``data`` (slowly, or cut short by a drop, when so configured)."""
        peer = self.peer
        if self.drop_at is not None and self.sent + len(data) > self.drop_at:
            data = data[: self.drop_at - self.sent]
            self.writer.write(data)
            await self.writer.drain()
            raise _Dropped
        size = peer.chunk or len(data) or 1
        for start in range(0, len(data), size):
            self.writer.write(data[start : start + size])
            await self.writer.drain()
            if peer.delay:
                await asyncio.sleep(peer.delay)
        self.sent += len(data)


def _response(action_id: str, status: str, *lines: str) -> bytes:
    body = "".join(f"{line}\r\n" for line in lines)
    return f"Response: {status}\r\nActionID: {action_id}\r\n{body}\r\n".encode()


@contextlib.contextmanager
def peer_in_thread(transcript: Transcript | None = None, **options: Any) -> Iterator[AmiPeer]:
    """An AmiPeer served by an event loop of its own in a thread, for code that runs its
    own loop (a TestClient's lifespan, a blocking client); stopped on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    peer = AmiPeer(transcript, **options)
    asyncio.run_coroutine_threadsafe(peer.__aenter__(), loop).result(5)
    try:
        yield peer
    finally:
        asyncio.run_coroutine_threadsafe(peer.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
