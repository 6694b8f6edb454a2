"""``voip24h webhook add|list|remove|test|rotate|attempts`` and ``voip24h deliver --once``
(CliRunner, exact output) against a receiver on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from tests.builders import calls
from tests.webhook_receiver import Receiver
from voip24h.cli.main import cli

ENV = {"VOIP24H_WEBHOOK_ALLOW_CIDRS": "127.0.0.1"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.stop()


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), env=ENV, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_add_list_test_rotate_attempts_remove(db_url, add_partner, receiver):
    add_partner("crm", accountcodes=("acme",))
    added = run("webhook", "add", "crm", receiver.url, "--event-type", "record.created",
                "--db", db_url)  # fmt: skip
    match = re.fullmatch(
        r"webhook (ep_[0-9a-f]{16}) added for partner 'crm': (\S+)\n"
        r"Its signing secret, shown only this once:\n\n    (whsec_\S+)\n\n"
        r"Give it to the partner over a safe channel; receivers verify with it.\n",
        added,
    )
    assert match and match.group(2) == receiver.url
    endpoint, secret = match.group(1), match.group(3)
    receiver.secrets = [secret]
    assert run("webhook", "list", "--db", db_url) == (
        f"{endpoint}  crm  enabled  {receiver.url}  record.created\n"
    )
    listed = json.loads(run("webhook", "list", "--json", "--db", db_url))
    assert [e["id"] for e in listed] == [endpoint] and secret not in str(listed)
    assert run("webhook", "test", endpoint, "--db", db_url) == "delivered: HTTP 200\n"
    assert receiver.seen[-1]["verified"]
    rotated = run("webhook", "rotate", endpoint, "--overlap", "2h", "--db", db_url)
    new = re.search(r"    (whsec_\S+)\n", rotated)
    assert new and new.group(1) != secret
    assert rotated.startswith(f"webhook {endpoint}: new secret; the previous one also signs until ")
    receiver.status = 500
    failed = run("webhook", "test", endpoint, "--db", db_url, code=1)
    assert failed == "Error: not delivered: HTTP 500\n"
    assert run("webhook", "attempts", "--db", db_url) == "no delivery attempts\n"
    assert run("webhook", "remove", endpoint, "--db", db_url) == f"webhook {endpoint} removed\n"
    assert run("webhook", "list", "--db", db_url) == "no webhook endpoints\n"
    gone = run("webhook", "remove", endpoint, "--db", db_url, code=1)
    assert gone == "Error: No webhook endpoint with this id belongs to this partner.\n"


def test_refused_urls_and_unknown_partners_are_one_line_errors(db_url, add_partner):
    add_partner("crm")
    refused = run("webhook", "add", "crm", "http://169.254.169.254/x", "--db", db_url, code=1)
    assert refused.startswith("Error: the webhook host 169.254.169.254 resolves to 169.254.169.254")
    nobody = run("webhook", "add", "nobody", "https://example.com/x", "--db", db_url, code=1)
    assert nobody == "Error: There is no partner named 'nobody'.\n"


def test_deliver_once_then_attempts_shows_every_attempt(db_url, add_partner, load, receiver):
    add_partner("crm", accountcodes=("acme",))
    added = run("webhook", "add", "crm", receiver.url, "--db", db_url)
    endpoint = re.search(r"ep_[0-9a-f]{16}", added)
    assert endpoint
    load(*calls())
    receiver.replies = [(503, {"Retry-After": "60"})]
    assert run("deliver", "--once", "--db", db_url) == ""
    lines = run("webhook", "attempts", endpoint.group(0), "--db", db_url).splitlines()
    assert len(lines) == len(receiver.seen) >= 2
    pattern = (
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  " + endpoint.group(0) + r"  evt_[0-9A-Z]{26}  #1  "
        r"(HTTP 200  \d+ ms|HTTP 503  \d+ ms  HTTP 503)"
    )
    assert all(re.fullmatch(pattern, line) for line in lines), lines
    assert sum("HTTP 503" in line for line in lines) == 1
    rows = json.loads(run("webhook", "attempts", "--json", "--db", db_url))
    assert {r["status"] for r in rows} == {200, 503} and rows[0]["endpointId"] == endpoint.group(0)
