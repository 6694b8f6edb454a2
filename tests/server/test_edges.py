"""Issue 18 item 6: a trailing slash and a wrong Bearer header get clear -1 envelopes."""

from __future__ import annotations

from tests.conftest import API


def _request(secret: str | None = None) -> dict[str, object]:
    request: dict[str, object] = {"requestType": "getUser", "data": {"user": "137"}}
    if secret is not None:
        request["partnerSecret"] = secret
    return request


def test_trailing_slash_gets_the_404_envelope_not_a_redirect(add_partner, client):
    secret = add_partner()
    answer = client.post(API + "/", json=_request(secret), follow_redirects=False)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert "location" not in answer.headers
    assert answer.content == (
        b'{"respCode":-1,"respMsg":"No such endpoint. Send POST /api/v1/partner/voip24h.",'
        b'"errorCode":"not_found"}'
    )


def test_wrong_bearer_with_right_body_secret_names_the_bearer_token(add_partner, client):
    secret = add_partner()
    answer = client.post(
        API, json=_request(secret), headers={"Authorization": "Bearer not-the-secret"}
    )
    assert answer.status_code == 401
    assert answer.json() == {
        "respCode": -1,
        "respMsg": "The Authorization: Bearer token is not valid.",
        "errorCode": "invalid_secret",
    }


def test_wrong_body_secret_without_bearer_keeps_the_seed_message(add_partner, client):
    add_partner()
    answer = client.post(API, json=_request("not-the-secret"))
    assert answer.status_code == 401
    assert answer.json() == {
        "respCode": -1,
        "respMsg": "partnerSecret is not valid.",
        "errorCode": "invalid_secret",
    }
