"""Live call events per extension from the AMI event stream: a pure state machine, no I/O.

:meth:`LiveCalls.feed` takes each AMI event (a dict of headers) and returns the
``call.ringing`` / ``call.answered`` / ``call.ended`` events it completes. A user's
part in a call (a *leg*) is keyed by (Linkedid, extension), so the several channels
one extension has in a call (``Local/101@from-queue-…;1``, its ``;2`` half and the
``SIP/101-…`` it dials) make one leg and one set of events. Rules:

- a channel belongs to the extension ``extension_of(channel)`` names; others (trunks,
  a queue's number) have no leg;
- the call's *origin* channel (Uniqueid == Linkedid) placed the call: its leg rings
  when it dials (DialBegin) and is answered by the DialEnd ANSWER of its dial, or
  when it goes Up without dialling (an IVR, the echo test); its phoneNumber is the
  number dialled, its direction internal when that number looks like an extension;
- an origin channel that is itself dialled with no source (an AMI Originate) is the
  user of a click-to-call: it rings when its phone rings, is answered when the far
  end answers it, and its phoneNumber is the Originate's number (see :meth:`expect`);
- any other extension channel is being called: it rings with Ringing, is answered
  when it goes Up; phoneNumber is the caller's number, direction inbound when the
  call came from a non-extension channel (a trunk), internal otherwise;
- a leg ends when its last channel hangs up; the status says how (answered, busy,
  no_answer, cancelled, answered_elsewhere, failed, missed).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

RINGING, ANSWERED, ENDED = "call.ringing", "call.answered", "call.ended"
INBOUND, OUTBOUND, INTERNAL = "inbound", "outbound", "internal"

_STATE_RINGING, _STATE_UP = "5", "6"
_DIAL_STATUS = {
    "BUSY": "busy",
    "NOANSWER": "no_answer",
    "CANCEL": "cancelled",
    "CONGESTION": "failed",
    "CHANUNAVAIL": "failed",
    "DONTCALL": "failed",
    "TORTURE": "failed",
    "INVALIDARGS": "failed",
}
_CAUSE_STATUS = {"17": "busy", "18": "no_answer", "19": "no_answer", "21": "failed",
                 "26": "answered_elsewhere", "34": "failed", "38": "failed"}
_CDR_STATUS = {"BUSY": "busy", "NO ANSWER": "no_answer", "FAILED": "failed",
               "CONGESTION": "failed"}
_DIGITS = re.compile(r"\+?[0-9]+", re.ASCII)
MAX_CALLS = 10_000  # calls remembered at once; the oldest is dropped past it
_GONE_REMEMBERED = 4096  # hung-up channels remembered, so trailing events are ignored


class LiveEvent(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One live call event for one extension (``msgspec.json.encode`` gives camelCase)."""

    type: str
    call_id: str
    user: str
    phone_number: str
    direction: str
    occurred_at: datetime
    sequence: int
    tenant: str
    status: str | None = None


@dataclass(slots=True)
class _Channel:
    uniqueid: str
    linkedid: str
    name: str
    user: str | None
    number: str
    exten: str
    account: str = ""


@dataclass(slots=True)
class _Leg:
    user: str
    role: str  # "caller", "called" or "originated"
    channels: set[str] = field(default_factory=set)
    state: str = ""  # "", "ringing" or "answered"
    dialled: bool = False
    status: str = ""
    cause: str = ""
    phone_number: str = ""
    direction: str = ""


@dataclass(slots=True)
class _Call:
    linkedid: str
    account: str = ""
    caller_number: str = ""
    caller_is_extension: bool = False
    channels: set[str] = field(default_factory=set)
    legs: dict[str, _Leg] = field(default_factory=dict)
    sequence: dict[str, int] = field(default_factory=dict)


class LiveCalls:
    """The calls in progress, fed AMI events one at a time. Not thread-safe; no I/O."""

    def __init__(
        self,
        extension_of: Callable[[str], str | None],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._extension_of = extension_of
        self._clock = clock
        self._channels: dict[str, _Channel] = {}
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._expected: dict[str, tuple[str, str]] = {}
        self._gone: OrderedDict[str, None] = OrderedDict()

    @property
    def open_calls(self) -> int:
        """How many calls have a channel still up."""
        return len(self._calls)

    def expect(self, call_id: str, user: str, phone_number: str) -> None:
        """Tell the machine an Originate with ChannelId ``call_id`` rings ``user`` to
        reach ``phone_number``, so its events carry the number from the first one."""
        if len(self._expected) >= MAX_CALLS:
            self._expected.pop(next(iter(self._expected)))
        self._expected[call_id] = (user, phone_number)

    def reset(self) -> None:
        """Forget every call (after a reconnect the PBX state is unknown)."""
        self._channels.clear()
        self._calls.clear()
        self._gone.clear()

    def feed(self, event: Mapping[str, str]) -> list[LiveEvent]:
        """The live events ``event`` completes (most events complete none)."""
        handler = _HANDLERS.get(event.get("Event", ""))
        if handler is None:
            return []
        out: list[LiveEvent] = []
        handler(self, event, out)
        return out

    # -- channels ---------------------------------------------------------------

    def _channel(self, event: Mapping[str, str], prefix: str = "") -> _Channel | None:
        uniqueid = event.get(prefix + "Uniqueid", "")
        if not uniqueid:
            return None
        channel = self._channels.get(uniqueid)
        if channel is None:
            if uniqueid in self._gone:
                return None  # an event trailing its channel's Hangup must not revive it
            name = event.get(prefix + "Channel", "")
            linkedid = event.get(prefix + "Linkedid", "") or uniqueid
            if not name:
                return None
            channel = _Channel(
                uniqueid, linkedid, name, self._extension_of(name),
                _number(event.get(prefix + "CallerIDNum", "")), event.get(prefix + "Exten", ""),
            )
            self._channels[uniqueid] = channel
            call = self._call(linkedid)
            call.channels.add(uniqueid)
            if uniqueid == linkedid:
                call.caller_number = channel.number
                call.caller_is_extension = channel.user is not None
        account = event.get(prefix + "AccountCode", "")
        if account:
            channel.account = account
            known = self._calls.get(channel.linkedid)
            if known is not None and not known.account:
                known.account = account
        return channel

    def _call(self, linkedid: str) -> _Call:
        call = self._calls.get(linkedid)
        if call is None:
            call = self._calls[linkedid] = _Call(linkedid)
            if len(self._calls) > MAX_CALLS:
                _, dropped = self._calls.popitem(last=False)
                for uniqueid in dropped.channels:
                    self._channels.pop(uniqueid, None)
        return call

    def _leg(self, channel: _Channel, role: str) -> _Leg | None:
        if channel.user is None:
            return None
        call = self._call(channel.linkedid)
        leg = call.legs.get(channel.user)
        if leg is None:
            leg = call.legs[channel.user] = _Leg(channel.user, role)
            self._describe(call, leg, channel)
        leg.channels.add(channel.uniqueid)
        return leg

    def _describe(self, call: _Call, leg: _Leg, channel: _Channel) -> None:
        if leg.role == "called":
            leg.phone_number = call.caller_number
            leg.direction = INTERNAL if call.caller_is_extension else INBOUND
            return
        expected = self._expected.pop(call.linkedid, None)
        number = expected[1] if expected is not None else channel.exten
        leg.phone_number = "" if number == "s" else number
        leg.direction = self._direction_to(leg.phone_number)

    def _direction_to(self, number: str) -> str:
        if not number:
            return OUTBOUND
        # A dialled number is internal when it would be an extension's name.
        return INTERNAL if self._extension_of(f"Local/{number}@direction") else OUTBOUND

    # -- transitions ------------------------------------------------------------

    def _emit(self, out: list[LiveEvent], event: Mapping[str, str], channel: _Channel,
              leg: _Leg, kind: str, status: str | None = None) -> None:
        call = self._call(channel.linkedid)
        sequence = call.sequence.get(leg.user, 0) + 1
        call.sequence[leg.user] = sequence
        out.append(LiveEvent(
            type=kind, call_id=call.linkedid, user=leg.user, phone_number=leg.phone_number,
            direction=leg.direction, occurred_at=self._when(event), sequence=sequence,
            tenant=channel.account or call.account, status=status,
        ))

    def _ring(self, out: list[LiveEvent], event: Mapping[str, str], channel: _Channel,
              leg: _Leg) -> None:
        if not leg.state:
            leg.state = "ringing"
            self._emit(out, event, channel, leg, RINGING)

    def _answer(self, out: list[LiveEvent], event: Mapping[str, str], channel: _Channel,
                leg: _Leg) -> None:
        if leg.state != "answered":
            self._ring(out, event, channel, leg)
            leg.state = "answered"
            self._emit(out, event, channel, leg, ANSWERED)

    def _role(self, channel: _Channel) -> str:
        return "caller" if channel.uniqueid == channel.linkedid else "called"

    def _when(self, event: Mapping[str, str]) -> datetime:
        stamp = event.get("Timestamp")
        if stamp:
            try:
                return datetime.fromtimestamp(float(stamp), UTC)
            except (ValueError, OverflowError, OSError):
                pass
        return self._clock()

    def _on_channel(self, event: Mapping[str, str], out: list[LiveEvent]) -> None:
        self._channel(event)

    def _on_state(self, event: Mapping[str, str], out: list[LiveEvent]) -> None:
        channel = self._channel(event)
        if channel is None or channel.user is None:
            return
        state = event.get("ChannelState", "")
        leg = self._leg(channel, self._role(channel))
        if leg is None:
            return
        if state == _STATE_RINGING and leg.role != "caller":
            connected = _number(event.get("ConnectedLineNum", ""))
            if leg.role == "called" and not leg.state and connected not in ("", leg.user):
                leg.phone_number = connected  # after a transfer: who rings, not who called
            self._ring(out, event, channel, leg)
        elif state == _STATE_UP and (
            leg.role == "called" or (leg.role == "caller" and not leg.dialled)
        ):
            self._answer(out, event, channel, leg)

    def _on_dial_begin(self, event: Mapping[str, str], out: list[LiveEvent]) -> None:
        source = self._channel(event)
        dest = self._channel(event, "Dest")
        if dest is not None and dest.user is not None and (
            source is None or source.user != dest.user
        ):
            role = "originated" if source is None and dest.uniqueid == dest.linkedid else "called"
            self._leg(dest, role)
        if source is not None and source.user is not None and (
            dest is None or dest.user != source.user
        ):
            leg = self._leg(source, self._role(source))
            if leg is not None and leg.role != "called":
                leg.dialled = True
                if not leg.phone_number and event.get("Exten", "s") != "s":
                    leg.phone_number = event["Exten"]  # an Originate's number, learnt late
                    leg.direction = self._direction_to(leg.phone_number)
                if leg.role == "caller":
                    self._ring(out, event, source, leg)

    def _on_dial_end(self, event: Mapping[str, str], out: list[LiveEvent]) -> None:
        source = self._channel(event)
        dest = self._channel(event, "Dest")
        status = event.get("DialStatus", "")
        for channel, mine in ((dest, "called"), (source, "dialler")):
            if channel is None or channel.user is None:
                continue
            leg = self._call(channel.linkedid).legs.get(channel.user)
            if leg is None or (source is not None and dest is not None
                               and source.user == dest.user):
                continue  # Local ;2 ringing its own SIP/101: plumbing, not the user's dial
            if mine == "dialler" and leg.role == "called":
                continue
            if status == "ANSWER":
                if mine == "dialler" or leg.role == "called":
                    self._answer(out, event, channel, leg)
            elif status in _DIAL_STATUS and leg.state != "answered":
                leg.status = _DIAL_STATUS[status]

    def _on_bridge_enter(self, event: Mapping[str, str], out: list[LiveEvent]) -> None:
        channel = self._channel(event)
        if channel is not None and channel.user is not None:
            leg = self._leg(channel, self._role(channel))
            if leg is not None and leg.state:
                self._answer(out, event, channel, leg)

    def _on_hangup(self, event: Mapping[str, str], out: list[LiveEvent]) -> None:
        channel = self._channel(event)
        if channel is None:
            return
        self._channels.pop(channel.uniqueid, None)
        self._gone[channel.uniqueid] = None
        if len(self._gone) > _GONE_REMEMBERED:
            self._gone.popitem(last=False)
        call = self._calls.get(channel.linkedid)
        if call is None:
            return
        call.channels.discard(channel.uniqueid)
        leg = call.legs.get(channel.user) if channel.user is not None else None
        if leg is not None:
            leg.channels.discard(channel.uniqueid)
            leg.cause = event.get("Cause", "") or leg.cause
            if not leg.channels:
                del call.legs[leg.user]
                if leg.state:
                    self._emit(out, event, channel, leg, ENDED, _status(leg))
        if not call.channels:
            del self._calls[call.linkedid]

    def _on_cdr(self, event: Mapping[str, str], out: list[LiveEvent]) -> None:
        call = None
        for channel in self._channels.values():
            if channel.name in (event.get("Channel"), event.get("DestinationChannel")):
                call = self._calls.get(channel.linkedid)
                leg = call.legs.get(channel.user or "") if call is not None else None
                status = _CDR_STATUS.get(event.get("Disposition", ""))
                if leg is not None and status and not leg.status and leg.state != "answered":
                    leg.status = status
        account = event.get("AccountCode", "")
        if call is not None and account and not call.account:
            call.account = account


def _status(leg: _Leg) -> str:
    if leg.state == "answered":
        return "answered"
    by_cause = _CAUSE_STATUS.get(leg.cause, "")
    if by_cause == "answered_elsewhere" and leg.status in ("", "cancelled"):
        return by_cause
    if leg.status:
        return leg.status
    if by_cause:
        return by_cause
    return "missed" if leg.role == "called" else "cancelled"


def _number(text: str) -> str:
    return text if _DIGITS.fullmatch(text) else ("" if text in ("<unknown>", "") else text)


_HANDLERS: dict[str, Callable[[LiveCalls, Mapping[str, str], list[LiveEvent]], None]] = {
    "Newchannel": LiveCalls._on_channel,
    "NewAccountCode": LiveCalls._on_channel,
    "Newstate": LiveCalls._on_state,
    "DialBegin": LiveCalls._on_dial_begin,
    "DialEnd": LiveCalls._on_dial_end,
    "BridgeEnter": LiveCalls._on_bridge_enter,
    "Hangup": LiveCalls._on_hangup,
    "Cdr": LiveCalls._on_cdr,
}

EVENTS: frozenset[str] = frozenset(_HANDLERS)
"""The AMI events LiveCalls reads (every other one can be skipped unparsed)."""
