"""Schemathesis hooks for tests/server/test_fuzz_api.py (loaded with SCHEMATHESIS_HOOKS).

schemathesis' positive_data_acceptance expects every schema-valid request to be
accepted. Some are refused for what they mean, not their shape: an extension this
PBX does not have, a date not in the calendar, a range over the limit, a cursor the
server never issued. This check replaces it and is stricter where it matters: such
a refusal must name one of those meaning errors, never a shape error.
"""

from __future__ import annotations

import orjson
import schemathesis

MEANING_ERRORS = frozenset(
    {
        "invalid_user",
        "invalid_date",
        "date_range_reversed",
        "date_range_too_large",
        "result_too_large",
        "invalid_cursor",
        "user_not_permitted",
        "webhook_url_refused",  # a URL that does not resolve, or to a forbidden address
        "too_many_webhooks",
    }
)
# Fields the schema cannot say are exclusive: phoneNumber/phonePrefix, eventId/since.
EXCLUSIVE = ("not both", "(one of them)")
ACCEPTED = frozenset({200, 206, 401, 403, 404, 409, 429})


@schemathesis.check
def schema_valid_data_accepted(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code >= 500:
        return None  # negative data, and 5xx (not_a_server_error judges those)
    if response.status_code == 400:
        doc = orjson.loads(response.content)
        code = doc.get("errorCode")
        if code == "invalid_field" and any(words in doc.get("respMsg", "") for words in EXCLUSIVE):
            return None
        assert code in MEANING_ERRORS, f"schema-valid request refused as {code!r}"
        return None
    assert response.status_code in ACCEPTED, f"schema-valid request got {response.status_code}"
    return None
