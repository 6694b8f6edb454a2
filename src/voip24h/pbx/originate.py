"""Click-to-call: the AMI Originate for ``makeDial {user, phoneNumber}`` and its outcome.

The user's own phone rings first (``Channel``, from a template such as ``PJSIP/{user}``);
when it answers, Asterisk runs ``phoneNumber`` at priority 1 of the configured context.
``ChannelId`` fixes the new channel's Uniqueid, which is also its Linkedid, so the
call's id (the records' callId) is known before Asterisk says anything.

OriginateResponse ``Reason`` is the last control frame the channel saw
(``enum ast_control_frame_type`` in Asterisk's include/asterisk/frame.h: HANGUP=1,
RING=2, RINGING=3, ANSWER=4, BUSY=5, CONGESTION=8), or 0 when no channel could be made.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from voip24h.pbx.connection import AmiConnection, LinkLost
from voip24h.pbx.protocol import Message

ANSWERED, BUSY, NO_ANSWER, CONGESTED = "answered", "busy", "no_answer", "congested"
NO_SUCH_EXTENSION, FAILED = "no_such_extension", "failed"

REASONS: Mapping[str, str] = {
    "0": FAILED,  # no channel: the user's device is unknown, unregistered or unreachable
    "1": FAILED,  # AST_CONTROL_HANGUP: the phone hung up (declined) before answering
    "2": NO_ANSWER,  # AST_CONTROL_RING
    "3": NO_ANSWER,  # AST_CONTROL_RINGING: still ringing when the Timeout ran out
    "4": ANSWERED,  # AST_CONTROL_ANSWER
    "5": BUSY,  # AST_CONTROL_BUSY
    "8": CONGESTED,  # AST_CONTROL_CONGESTION
}

_PHONE_NUMBER = re.compile(r"\+?[0-9]{1,20}", re.ASCII)
_SAFE_NAME = re.compile(r"[0-9A-Za-z_.-]{1,64}", re.ASCII)
MAX_PHONE_NUMBER = 20


class DialRefused(ValueError):
    """A makeDial that must not reach the PBX (a number or user that is not one)."""


@dataclass(frozen=True)
class OriginateSettings:
    """How click-to-call reaches the PBX: where the number is dialled and who is shown."""

    context: str
    channel_template: str = "PJSIP/{user}"
    caller_id: str = ""  # e.g. '"Click2Call" <{user}>'; {user} and {phone_number} filled in
    timeout_seconds: float = 30.0
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OriginateResult:
    """How an Originate ended: ``result`` is one of the module's result names."""

    result: str
    call_id: str
    uniqueid: str
    linkedid: str
    reason: str = ""
    message: str = ""


def check_dial(user: str, phone_number: str, is_extension: Callable[[str], bool]) -> None:
    """Raise :class:`DialRefused` unless ``user`` is an extension and ``phone_number``
    is at most 20 characters of digits with an optional leading ``+``.

    Anything else could reach another context (``101@other``), another channel
    (``123&SIP/x``), a dialplan separator (``1;2``) or an AMI header, so it is refused
    before anything is sent.
    """
    if not isinstance(phone_number, str) or not phone_number:
        raise DialRefused("phoneNumber is empty")
    if len(phone_number) > MAX_PHONE_NUMBER:
        raise DialRefused(f"phoneNumber is longer than {MAX_PHONE_NUMBER} characters")
    if not _PHONE_NUMBER.fullmatch(phone_number):
        raise DialRefused("phoneNumber may hold only digits and a leading +")
    if not isinstance(user, str) or not _SAFE_NAME.fullmatch(user) or not is_extension(user):
        raise DialRefused(f"user {user!r} is not an extension")


def new_channel_id() -> str:
    """A fresh ChannelId shaped like Asterisk's uniqueids (``epoch.suffix``)."""
    return f"{int(time.time())}.c2c{secrets.token_hex(6)}"


def build_originate(
    user: str,
    phone_number: str,
    settings: OriginateSettings,
    *,
    is_extension: Callable[[str], bool],
    action_id: str,
    channel_id: str,
) -> list[tuple[str, str]]:
    """The Originate action (ordered headers) for a checked makeDial (:func:`check_dial`)."""
    check_dial(user, phone_number, is_extension)
    fill = {"user": user, "phone_number": phone_number}
    action = [
        ("Action", "Originate"),
        ("ActionID", action_id),
        ("Channel", settings.channel_template.format(**fill)),
        ("Context", settings.context),
        ("Exten", phone_number),
        ("Priority", "1"),
    ]
    if settings.caller_id:
        action.append(("CallerID", settings.caller_id.format(**fill)))
    action += [
        ("Timeout", str(int(settings.timeout_seconds * 1000))),
        ("Async", "true"),
        ("ChannelId", channel_id),
        ("Variable", f"VOIP24H_CALLID={channel_id}"),
    ]
    action += [("Variable", f"{key}={value}") for key, value in settings.variables.items()]
    return action


def result_of(response: Message, channel_id: str) -> OriginateResult:
    """The result an OriginateResponse event (or an Error response) stands for."""
    reason = response.get("Reason", "")
    message = response.get("Message", "")
    if response.get("Event") != "OriginateResponse":
        failed = NO_SUCH_EXTENSION if "xtension" in message else FAILED
        return OriginateResult(failed, channel_id, "", channel_id, reason, message)
    result = REASONS.get(reason, FAILED)
    if response.get("Response") == "Success":
        result = ANSWERED
    uniqueid = response.get("Uniqueid", "")
    if not uniqueid or uniqueid == "<unknown>":
        uniqueid = channel_id
    return OriginateResult(result, uniqueid, uniqueid, uniqueid, reason, message)


class Originator:
    """Sends Originates on a connected session and waits for each one's outcome."""

    def __init__(
        self,
        connection: AmiConnection,
        settings: OriginateSettings,
        is_extension: Callable[[str], bool],
        *,
        channel_ids: Callable[[], str] = new_channel_id,
        action_ids: Callable[[], str] | None = None,
    ):
        self._connection = connection
        self._action_ids = action_ids or connection.next_action_id
        self._settings = settings
        self._is_extension = is_extension
        self._channel_ids = channel_ids

    async def dial(
        self, user: str, phone_number: str, *, timeout: float | None = None
    ) -> OriginateResult:
        """Ring ``user``, then dial ``phone_number``; the result once Asterisk knows it.

        Raises :class:`DialRefused` (nothing sent) for a bad user or number, TimeoutError
        when no OriginateResponse comes within ``timeout`` (default: the ring timeout
        plus 10 s), and the connection's errors when the link fails.
        """
        check_dial(user, phone_number, self._is_extension)
        connection = self._connection
        action_id = self._action_ids()
        channel_id = self._channel_ids()
        action = build_originate(
            user, phone_number, self._settings, is_extension=self._is_extension,
            action_id=action_id, channel_id=channel_id,
        )
        done: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

        def on_event(event: Message) -> None:
            if (event.get("Event") == "OriginateResponse"
                    and event.get("ActionID") == action_id and not done.done()):
                done.set_result(event)

        # Listen before sending: the OriginateResponse may follow the response at once.
        connection.add_listener(on_event)
        try:
            wait = self._settings.timeout_seconds + 10.0 if timeout is None else timeout
            async with asyncio.timeout(wait):
                response = await connection.request(action, timeout=wait)
                if response.get("Response", "").lower() == "error":
                    return result_of(response, channel_id)
                closed: asyncio.Future[object] = asyncio.ensure_future(connection.wait_closed())
                try:
                    await asyncio.wait((done, closed), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closed.cancel()
                if not done.done():
                    raise LinkLost("AMI link closed before the OriginateResponse came")
                return result_of(done.result(), channel_id)
        finally:
            connection.remove_listener(on_event)
