"""makeDial's way to the PBX: an Originate on the link this process holds, or on a
short session of its own when another process holds the link (several workers).

Every failure to reach the PBX is :class:`voip24h.errors.PbxUnavailable` (503), said
plainly; how the call itself went is the answer, not an error.
"""

from __future__ import annotations

import logging

from voip24h import errors
from voip24h.config import Settings
from voip24h.domain.mapping import ExtensionMatcher
from voip24h.pbx.connection import AmiConnection, AmiError, AuthenticationFailed
from voip24h.pbx.originate import (
    DialRefused,
    OriginateResult,
    OriginateSettings,
    Originator,
    new_channel_id,
)
from voip24h.pbx.protocol import ProtocolError
from voip24h.pbx.runner import PbxRunner
from voip24h.pbx.target import AmiTarget, parse_ami_url
from voip24h.service.results import Dialed

log = logging.getLogger(__name__)


def originate_settings(settings: Settings) -> OriginateSettings:
    """The Originate's context, channel, caller ID and ring time from the settings."""
    return OriginateSettings(
        context=settings.dial_context,
        channel_template=settings.dial_channel,
        caller_id=settings.dial_caller_id,
        timeout_seconds=settings.dial_timeout_seconds,
    )


class PbxDialer:
    """Sends makeDial's Originate; the runner (if this process has one) lends its link."""

    def __init__(
        self,
        settings: Settings,
        runner: PbxRunner | None = None,
        *,
        connect_timeout: float = 5.0,
    ):
        self.target: AmiTarget = parse_ami_url(settings.ami_url)
        self.settings = originate_settings(settings)
        self.matcher = ExtensionMatcher(settings.extension_pattern, settings.extensions)
        self.runner = runner
        self.connect_timeout = connect_timeout

    async def originate(self, user: str, phone_number: str) -> Dialed:
        """Ring ``user``, then dial ``phone_number``: the OriginateResponse, mapped."""
        runner = self.runner
        connection = runner.connection if runner is not None else None
        if connection is not None:
            return await self._dial(connection, user, phone_number)
        if runner is not None and runner.leader:
            raise errors.PbxUnavailable("The link to the PBX is down; it is being retried.")
        try:
            connection = await AmiConnection.open(
                self.target, timeout=self.connect_timeout, events="call"
            )
        except AuthenticationFailed as exc:
            log.error("makeDial: %s", exc)
            raise errors.PbxUnavailable("The PBX refused this server's login.") from None
        except (OSError, TimeoutError, AmiError, ProtocolError) as exc:
            log.warning(
                "makeDial: PBX %s unreachable: %s", self.target.masked(), type(exc).__name__
            )
            raise errors.PbxUnavailable("The PBX cannot be reached now; retry shortly.") from None
        try:
            return await self._dial(connection, user, phone_number)
        finally:
            await connection.close()

    async def _dial(self, connection: AmiConnection, user: str, phone_number: str) -> Dialed:
        runner = self.runner

        def channel_id() -> str:
            made = new_channel_id()
            if runner is not None:  # its live events then carry the number from the start
                runner.live.expect(made, user, phone_number)
            return made

        originator = Originator(
            connection, self.settings, self.matcher.is_extension, channel_ids=channel_id
        )
        try:
            result = await originator.dial(user, phone_number)
        except DialRefused as exc:  # checked before already: a belt to the braces
            raise errors.InvalidPhoneNumber(str(exc)) from None
        except (TimeoutError, AmiError) as exc:
            log.warning(
                "makeDial: no OriginateResponse from %s: %s",
                self.target.masked(),
                type(exc).__name__,
            )
            raise errors.DialOutcomeUnknown() from None
        return dialed(result, user, phone_number)


def dialed(result: OriginateResult, user: str, phone_number: str) -> Dialed:
    """The partner's answer for an Originate's result."""
    return Dialed(result.result, result.call_id, user, phone_number, result.reason)
