"""The push request types' handler: check, call the webhooks service, render."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from starlette.responses import Response

from voip24h import errors
from voip24h.service.answers import Partner
from voip24h.service.webhooks.endpoints import Webhooks, endpoint_document
from voip24h.wire import push

JSON = "application/json"


def _success(data: Any, **extra: Any) -> Response:
    body = {"respCode": 0, "respMsg": "Success", "data": data, **extra}
    return Response(orjson.dumps(body), media_type=JSON)


def _users(values: list[str | int] | None) -> list[str]:
    return [str(value) for value in values or ()]


async def push_answer(service: Webhooks, partner: Partner, data: push.PushData) -> Response:
    """The answer to a push request of ``partner``."""
    pid = partner.id
    if isinstance(data, push.GetEventsData):
        found, cursor = await service.events(partner.scope, data.cursor, data.limit)
        return _success(found, nextCursor=cursor)
    if isinstance(data, push.WebhookAddData):
        added = await service.add(
            pid, partner.scope, data.url, data.eventTypes or (), _users(data.users)
        )
        return _success(added)
    if isinstance(data, push.WebhookListData):
        return _success([endpoint_document(row) for row in await service.endpoints(pid)])
    if isinstance(data, push.WebhookRemoveData):
        return _success(await service.remove(data.endpointId, pid))
    if isinstance(data, push.WebhookTestData):
        return _success(await service.test(data.endpointId, pid))
    if isinstance(data, push.WebhookRotateData):
        overlap = timedelta(hours=data.overlapHours)
        return _success(await service.rotate(data.endpointId, pid, overlap))
    if isinstance(data, push.WebhookRedeliverData):
        answer = await service.redeliver(data.endpointId, pid, data.eventId, data.since)
        return _success(answer)
    raise errors.InvalidRequestType()  # pragma: no cover - every push type is above
