"""What the running app holds: settings, database reader, stores and services.

Built once, by server/app.py:create_app (the composition root); handlers read it from
``request.app.state.voip24h``.
"""

from __future__ import annotations

from dataclasses import dataclass

from voip24h.config import Settings
from voip24h.db.drivers import Reader
from voip24h.domain.mapping import ExtensionMatcher
from voip24h.server.audit import AuditWriter
from voip24h.server.guard import Guard
from voip24h.server.middleware import Drain
from voip24h.server.observability import AccessLog, Metrics
from voip24h.service.answers import AnswerService, PartnerDirectory
from voip24h.service.webhooks.endpoints import Webhooks
from voip24h.service.webhooks.metrics import DeliveryMetrics


@dataclass
class State:
    """The app's parts, each made by create_app."""

    settings: Settings
    reader: Reader
    matcher: ExtensionMatcher
    partners: PartnerDirectory
    answers: AnswerService
    # Abuse resistance and operations (issue 5).
    metrics: Metrics
    guard: Guard
    drain: Drain
    access: AccessLog
    audit: AuditWriter | None
    webhooks: Webhooks  # endpoints and the event feed (issue 20)
    delivery: DeliveryMetrics
