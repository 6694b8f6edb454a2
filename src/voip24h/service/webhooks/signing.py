"""Standard Webhooks 1.0 signing, with the standardwebhooks package.

During a rotation both the new and the previous secret sign each message, so a
receiver still holding the old secret keeps verifying until it moves on.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the standard's prefix, not a secret)


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_headers(
    signing_secrets: Sequence[str], msg_id: str, body: bytes, at: datetime | None = None
) -> dict[str, str]:
    """The webhook-id, webhook-timestamp and webhook-signature headers for ``body``;
    one space-separated ``v1,`` signature per secret."""
    when = (at or datetime.now(UTC)).replace(microsecond=0)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    signatures = [Webhook(secret).sign(msg_id, when, body) for secret in signing_secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
