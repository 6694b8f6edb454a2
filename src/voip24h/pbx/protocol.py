"""The AMI wire format: actions out as bytes, messages in from a byte stream. No I/O.

An AMI message is ``Key: Value`` lines, each ended by CRLF, the message ended by an
empty line. The server opens with one banner line (``Asterisk Call Manager/9.0.0``).
"""

from __future__ import annotations

from collections.abc import Iterable

Message = dict[str, str]
"""One AMI response or event: its headers (a repeated key keeps its values, joined by
newlines, so ``Output:`` lines of a Command survive)."""

Action = Iterable[tuple[str, str]]
"""One AMI action as ordered (key, value) pairs; a key may repeat (``Variable``)."""

BANNER_PREFIX = b"Asterisk Call Manager/"
_END = b"\r\n\r\n"
_EVENT = b"Event: "
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class ProtocolError(Exception):
    """The peer broke the AMI framing (no banner, an oversized message, a bad action)."""


def encode_action(action: Action) -> bytes:
    """The bytes of ``action``: ``Key: Value\\r\\n`` per pair, then the empty line.

    A CR or LF inside a key or value would let it smuggle a header or a whole second
    action (``Exten: 1\\r\\nAction: Command``), so either is refused.
    """
    parts: list[str] = []
    for key, value in action:
        if not key or any(c in key for c in "\r\n: ") or "\r" in value or "\n" in value:
            raise ProtocolError(f"AMI header {key!r} has a character AMI cannot carry")
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


def parse_banner(line: bytes) -> str:
    """The AMI version in the server's first line, or ProtocolError if it is no AMI."""
    if not line.startswith(BANNER_PREFIX):
        raise ProtocolError(f"not an Asterisk manager interface: {line[:60]!r}")
    return line[len(BANNER_PREFIX) :].decode("ascii", "replace").strip()


def parse_message(block: str) -> Message:
    """One message's headers from its text (lines without the final empty line)."""
    message: Message = {}
    for line in block.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            key, sep, value = line.partition(":")
            if not sep:
                continue
        if key in message:
            message[key] += "\n" + value
        else:
            message[key] = value
    return message


class MessageReader:
    """Cuts a byte stream into messages, however the bytes were split on the way.

    With ``wanted``, events of other names are skipped unparsed (VarSet and Newexten
    are most of a busy PBX's stream); responses are always kept.
    """

    __slots__ = ("_buffer", "_wanted")

    def __init__(self, wanted: frozenset[str] | None = None) -> None:
        self._buffer = b""
        self._wanted = None if wanted is None else frozenset(n.encode() for n in wanted)

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by ``data`` (an incomplete tail is kept for later)."""
        buffer = self._buffer + data if self._buffer else data
        end = buffer.rfind(_END)
        if end < 0:
            if len(buffer) > MAX_MESSAGE_BYTES:
                raise ProtocolError(f"an AMI message over {MAX_MESSAGE_BYTES} bytes")
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 4 :]
        wanted = self._wanted
        if wanted is None:
            # Decoding once per chunk, not per message, is most of the parser's speed.
            text = buffer[:end].decode("utf-8", "replace")
            return [parse_message(block) for block in text.split("\r\n\r\n") if block]
        # Unwanted events are skipped on the bytes, never decoded: most of a busy
        # stream is dropped for a slice and a set lookup each.
        messages = []
        for block in buffer[:end].split(_END):
            if block[:7] == _EVENT:
                if _event_name(block) not in wanted:
                    continue
            elif not block:
                continue
            messages.append(parse_message(block.decode("utf-8", "replace")))
        return messages


def _event_name(block: bytes) -> bytes:
    end = block.find(b"\r\n")
    return block[7:] if end < 0 else block[7:end]
