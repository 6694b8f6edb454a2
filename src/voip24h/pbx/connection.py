"""One logged-in AMI session over an asyncio stream: actions matched to responses by ActionID.

A reader task cuts the stream into messages: a response completes the action waiting
on its ActionID, an event goes to every listener, in order, on the event loop. Nothing
here retries: :mod:`voip24h.pbx.link` keeps a session up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Callable, Sequence

from voip24h.pbx.protocol import Message, MessageReader, ProtocolError, encode_action, parse_banner
from voip24h.pbx.target import AmiTarget

log = logging.getLogger(__name__)

Listener = Callable[[Message], None]
_READ_SIZE = 256 * 1024


class AmiError(Exception):
    """The AMI session failed: no answer in time, the link closed, a refused action."""


class LinkLost(AmiError):
    """The link closed (or was aborted) before the action's response arrived."""


class ActionFailed(AmiError):
    """Asterisk answered an action with ``Response: Error``."""

    def __init__(self, action: str, response: Message):
        self.response = response
        super().__init__(f"AMI {action} refused: {response.get('Message', 'no message')}")


class AuthenticationFailed(AmiError):
    """Asterisk refused the Login: the user or secret in ``ami_url`` is wrong."""

    def __init__(self, target: AmiTarget, message: str):
        super().__init__(
            f"AMI login refused for user {target.username!r} at {target.masked()}: {message}"
            " (check the user and secret in ami_url against manager.conf, and its permit=)"
        )


class AmiConnection:
    """A connected AMI session. Build it with :meth:`open`; listeners get every event."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        version: str,
        target: AmiTarget,
        *,
        write_timeout: float = 5.0,
        wanted: frozenset[str] | None = None,
    ):
        self.version = version
        self._wanted = wanted
        self.target = target
        self._reader = reader
        self._writer = writer
        self._write_timeout = write_timeout
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._listeners: list[Listener] = []
        self._ids = itertools.count(1)
        self._prefix = f"v24h-{id(self):x}-"
        self._closed = asyncio.Event()
        self._close_reason: BaseException | None = None
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def open(
        cls,
        target: AmiTarget,
        *,
        listeners: Sequence[Listener] = (),
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        events: str = "on",
        wanted: frozenset[str] | None = None,
    ) -> AmiConnection:
        """Connect, read the banner and log in, all within ``timeout`` seconds.

        ``events`` is the Login's event classes (``call,cdr``: what live events need);
        ``wanted``, if given, the only event names listeners get (others are not parsed).

        Raises :class:`AuthenticationFailed` for a refused login, OSError or TimeoutError
        when the PBX cannot be reached, :class:`ProtocolError` for a peer that is no AMI.
        """
        context = ssl_context if ssl_context is not None else None
        if target.tls and context is None:
            context = ssl.create_default_context()
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                target.host, target.port, ssl=context, limit=_READ_SIZE
            )
            try:
                version = parse_banner(await reader.readline())
            except BaseException:
                writer.close()
                raise
        connection = cls(reader, writer, version, target, write_timeout=timeout, wanted=wanted)
        for listener in listeners:
            connection.add_listener(listener)
        try:
            await connection.login(events=events, timeout=timeout)
        except BaseException:
            await connection.close()
            raise
        return connection

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event from now on (it must not block)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``; no error if it was not there."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    @property
    def closed(self) -> bool:
        """True once the link has closed, for whatever reason."""
        return self._closed.is_set()

    async def wait_closed(self) -> BaseException | None:
        """Wait until the link closes; the reason (None for a clean close)."""
        await self._closed.wait()
        return self._close_reason

    def next_action_id(self) -> str:
        """A fresh ActionID, unique within this process."""
        return f"{self._prefix}{next(self._ids)}"

    async def send(self, action: list[tuple[str, str]], *, timeout: float = 5.0) -> Message:
        """Send ``action`` and return its response (``Response: Success`` or ``Follows``).

        An ``ActionID`` is added when the action has none. Raises :class:`ActionFailed`
        for ``Response: Error``, TimeoutError when none comes within ``timeout``,
        :class:`LinkLost` if the link closes first.
        """
        response = await self.request(action, timeout=timeout)
        if response.get("Response", "").lower() == "error":
            raise ActionFailed(dict(action).get("Action", "action"), response)
        return response

    async def request(self, action: list[tuple[str, str]], *, timeout: float = 5.0) -> Message:
        """Like :meth:`send`, but an Error response is returned, not raised."""
        if self.closed:
            raise LinkLost(f"AMI link to {self.target.masked()} is closed")
        fields = dict(action)
        action_id = fields.get("ActionID")
        if action_id is None:
            action_id = self.next_action_id()
            action = [action[0], ("ActionID", action_id), *action[1:]]
        data = encode_action(action)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(data)
                await self._writer.drain()
                return await future
        finally:
            self._pending.pop(action_id, None)

    async def login(self, *, events: str = "on", timeout: float = 5.0) -> None:
        """Log in with the target's user and secret; :class:`AuthenticationFailed` if refused."""
        response = await self.request(
            [
                ("Action", "Login"),
                ("ActionID", self.next_action_id()),
                ("Username", self.target.username),
                ("Secret", self.target.secret),
                ("Events", events),
            ],
            timeout=timeout,
        )
        if response.get("Response", "").lower() != "success":
            raise AuthenticationFailed(self.target, response.get("Message", "login refused"))

    def abort(self, reason: BaseException | None = None) -> None:
        """Close the link now (a peer that stopped answering); pending actions fail."""
        self._finish(reason)
        self._task.cancel()

    async def close(self) -> None:
        """Close the link and wait for the reader to stop."""
        self.abort()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(OSError, ssl.SSLError):
            await self._writer.wait_closed()

    async def _read_loop(self) -> None:
        parser = MessageReader(self._wanted)
        reason: BaseException | None = None
        try:
            while True:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    reason = LinkLost(f"AMI peer {self.target.masked()} closed the link")
                    break
                for message in parser.feed(data):
                    self._dispatch(message)
        except (OSError, ProtocolError, ssl.SSLError) as exc:
            reason = exc
        finally:
            self._finish(reason)

    def _dispatch(self, message: Message) -> None:
        if "Response" in message and "Event" not in message:
            future = self._pending.get(message.get("ActionID", ""))
            if future is not None and not future.done():
                future.set_result(message)
            return
        for listener in tuple(self._listeners):
            try:
                listener(message)
            except Exception:
                # One listener's bug must not take the link (and every other one) down.
                log.exception("AMI event listener %r failed", listener)
        if message.get("Event") == "Shutdown":
            log.warning("PBX %s is shutting down", self.target.masked())

    def _finish(self, reason: BaseException | None) -> None:
        if self._closed.is_set():
            return
        self._close_reason = reason
        self._closed.set()
        lost = LinkLost(f"AMI link to {self.target.masked()} closed: {reason or 'closed'}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(lost)
        self._pending.clear()
        self._writer.close()
