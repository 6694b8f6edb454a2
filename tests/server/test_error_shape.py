"""One failure envelope, made in one place, for every error class."""

from __future__ import annotations

import re

import orjson
import pytest

from voip24h import errors


def all_error_classes():
    found, todo = [], [errors.ApiError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls is not errors.ApiError:
            found.append(cls)
    return found


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_renders_the_envelope(cls):
    error = cls("Something went wrong.")
    body = orjson.loads(errors.envelope_bytes(error.message, error.error_code))
    assert body == {"respCode": -1, "respMsg": "Something went wrong.", "errorCode": cls.error_code}
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", cls.error_code)
    assert 400 <= cls.status <= 599


def test_error_codes_are_unique():
    codes = [cls.error_code for cls in all_error_classes()]
    assert len(codes) == len(set(codes))


def test_default_messages_are_sentences():
    for cls in all_error_classes():
        message = cls().message
        assert message[0].isupper() or message.startswith(
            ("data", "requestType", "partnerSecret", "fromDate")
        )
        assert message.endswith(".")


@pytest.mark.parametrize(
    "cls", [c for c in all_error_classes() if c.status == 503], ids=lambda c: c.__name__
)
def test_every_503_says_when_to_retry(cls):
    seconds = cls().headers["Retry-After"]
    assert seconds.isdigit() and 1 <= int(seconds) <= 60
    # A caller's own headers win; the default fills in only what is missing.
    assert cls(headers={"Retry-After": "9"}).headers["Retry-After"] == "9"
