"""/openapi.json is a valid OpenAPI 3.1 document that matches what the server answers,
and /docs works without internet access."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.builders import calls
from tests.conftest import API
from tests.support import AUDIO, KEY, NAME, unlimited
from voip24h import errors
from voip24h.wire import protocol


@pytest.fixture
def client(make_client: Any, settings: Any) -> Any:
    """The app without per-partner rate limits: these tests send many requests quickly."""
    return make_client(**unlimited(settings))


STATIC = Path(__file__).resolve().parents[2] / "src" / "voip24h" / "static" / "swagger-ui"


@pytest.fixture
def doc(client: Any) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return dict(response.json())


def checker(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": doc["components"]})


def answer_schema(doc: dict[str, Any], status: str = "200") -> dict[str, Any]:
    responses = doc["paths"][API]["post"]["responses"]
    return dict(responses[status]["content"]["application/json"]["schema"])


def assert_matches(doc: dict[str, Any], response: Any) -> None:
    status = str(response.status_code)
    errors_found = list(checker(doc, answer_schema(doc, status)).iter_errors(response.json()))
    assert not errors_found, (response.json(), [e.message for e in errors_found])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_document_is_valid_openapi_31(doc):
    validate(doc)
    assert doc["openapi"] == "3.1.0"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_request_body_is_a_one_of_with_a_discriminator(doc):
    schema = doc["paths"][API]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["discriminator"]["propertyName"] == "requestType"
    assert set(schema["discriminator"]["mapping"]) == set(protocol.DATA_TYPES)
    assert len(schema["oneOf"]) == len(protocol.DATA_TYPES)
    get_user = doc["components"]["schemas"]["GetUserRequest"]
    # partnerSecret is optional in the body: "Authorization: Bearer" may carry it instead.
    assert get_user["required"] == ["requestType", "data"]
    assert "partnerSecret" in get_user["properties"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_error_code_is_in_the_document(doc):
    codes = set(doc["components"]["schemas"]["ErrorResponse"]["properties"]["errorCode"]["enum"])
    pending, seen = [errors.ApiError], set()
    while pending:
        cls = pending.pop()
        seen.add(cls.error_code)
        pending.extend(cls.__subclasses__())
    assert seen <= codes


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_seed_samples_validate_against_the_request_schema(doc):
    from tests.seed import SEED_GET_DATE, SEED_GET_USER, SEED_GET_USER_DATE

    schema = doc["paths"][API]["post"]["requestBody"]["content"]["application/json"]["schema"]
    import orjson

    for body in (SEED_GET_USER, SEED_GET_DATE, SEED_GET_USER_DATE):
        checker(doc, schema).validate(orjson.loads(body))
    assert not checker(doc, schema).is_valid(
        {"requestType": "getUser", "partnerSecret": "x", "data": {"user": "137", "nope": 1}}
    )


def test_answers_match_the_document(load, add_partner, make_client, doc, tmp_path, settings):
    load(*calls())
    day = tmp_path / "monitor" / "2018" / "07" / "29"
    day.mkdir(parents=True)
    (day / NAME).write_bytes(AUDIO)
    client = make_client(
        recordings_dir=str(tmp_path / "monitor"), recording_link_key=KEY, **unlimited(settings)
    )
    secret = add_partner()
    window = {"fromDate": "28/07/2018", "toDate": "29/07/2018"}
    requests: list[tuple[str, dict[str, Any]]] = [
        ("getUser", {"user": "137"}),
        ("getDate", window),
        ("getUserDate", {"user": "137", **window}),
        ("getUser", {"user": "137", "extended": True, "limit": 2}),
        ("getDate", {**window, "fields": ["did", "hasRecording"], "callStatus": ["ANSWERED"]}),
        ("getCallData", {"callId": "1532840000.1", "extended": True}),
        ("recordingListen", {"callId": "1532857052.131132"}),
        ("recordingDownload", {"callId": "1532857052.131132"}),
        ("getStats", {**window, "groupBy": "hour"}),
        # and failures
        ("getUser", {"user": "13a7"}),
        ("getCallData", {"callId": "0.0"}),
        ("recordingListen", {"callId": "1532834934.130789"}),
        ("getUser", {"user": "137", "cursor": "bad"}),
    ]
    request_schema = doc["paths"][API]["post"]["requestBody"]["content"]["application/json"]
    for request_type, data in requests:
        body = {"requestType": request_type, "partnerSecret": secret, "data": data}
        checker(doc, request_schema["schema"]).validate(body)
        response = client.post(API, json=body)
        assert str(response.status_code) in doc["paths"][API]["post"]["responses"]
        assert_matches(doc, response)
    wrong = client.post(
        API, json={"requestType": "getUser", "partnerSecret": "nope" * 5, "data": {"user": "137"}}
    )
    assert wrong.status_code == 401
    assert_matches(doc, wrong)


def test_recording_route_is_in_the_document(doc):
    route = doc["paths"][API + "/recordings/{token}"]["get"]
    assert {"200", "206", "403", "404", "410"} <= set(route["responses"])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_docs_page_needs_nothing_from_the_internet(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(url.startswith("/docs/static/") for url in urls)
    assert 'data-url="/openapi.json"' in page.text
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content == (STATIC / url.rsplit("/", 1)[1]).read_bytes()
    bundle = client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_event_stream_is_in_the_document(doc):
    from voip24h.server.stream import STREAM_PATH

    route = doc["paths"][STREAM_PATH]["get"]
    assert route["security"] == [{"bearerAuth": []}]
    assert list(route["responses"]["200"]["content"]) == ["text/event-stream"]
    headers = [p for p in route["parameters"] if p["in"] == "header"]
    assert [p["name"] for p in headers] == ["Last-Event-ID"]
    assert {"400", "401", "429"} <= set(route["responses"])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_event_stream_refusals_match_the_document(client, add_partner, doc):
    from voip24h.server.stream import STREAM_PATH

    responses = doc["paths"][STREAM_PATH]["get"]["responses"]
    secret = add_partner("streamer")
    for answer, status, code in (
        (client.get(STREAM_PATH), 401, "missing_secret"),
        (client.get(STREAM_PATH, headers={"Authorization": "Bearer " + "x" * 20}), 401, None),
        (
            client.get(
                STREAM_PATH,
                headers={"Authorization": f"Bearer {secret}", "Last-Event-ID": "nope"},
            ),
            400,
            "invalid_cursor",
        ),
    ):
        assert answer.status_code == status, answer.text
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        assert not list(checker(doc, schema).iter_errors(answer.json()))
        if code is not None:
            assert answer.json()["errorCode"] == code
