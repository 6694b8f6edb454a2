"""What a real Asterisk 20 wrote (tests/fixtures/asterisk-20, copied from the lab
capture described in its scenarios.md) becomes the records its call list says.

Master.csv there is cdr_csv with loguniqueid=yes, loguserfield=yes, usegmtime=yes
(18 columns, GMT), accountcodes set per tenant in the dialplan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from voip24h.cli.importing import import_cmd
from voip24h.db.schema import call_records

MASTER = Path(__file__).parents[1] / "fixtures" / "asterisk-20" / "Master.csv"


def _import(db_url: str) -> None:
    result = CliRunner().invoke(import_cmd, [str(MASTER), "--usegmtime", "--db", db_url])
    assert result.exit_code == 0, result.output


def _records(engine: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """callId -> user -> record."""
    calls: dict[str, dict[str, dict[str, Any]]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(call_records)).mappings():
            calls.setdefault(row["callid"], {})[row["user_ext"]] = dict(row)
    return calls


def _summary(call: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str, str, str]]:
    return {
        user: (r["phone_number"], r["call_type"], r["call_status"], r["accountcode"])
        for user, r in call.items()
    }


def test_every_call_of_the_lab_pbx_gets_the_records_its_scenario_says(db_url, engine):
    _import(db_url)
    calls = _records(engine)
    # 1: 101 -> 102 answered (tenant A).
    assert _summary(calls["1796592265.0"]) == {
        "101": ("102", "INTERNAL", "ANSWERED", "tenantA"),
        "102": ("101", "INTERNAL", "ANSWERED", "tenantA"),
    }
    # 8: trunk -> DID -> queue 600, ringall 101 + 102: 101 answers, 102 does not.
    # Queue 600 itself is no user.
    assert _summary(calls["1796592317.14"]) == {
        "101": ("+15551230001", "EXTERNAL", "ANSWERED", "tenantA"),
        "102": ("+15551230001", "EXTERNAL", "NO ANSWER", "tenantA"),
    }
    # 11: trunk -> ring group 700: 101 answers, 102 and 103 ring out.
    assert _summary(calls["1796592347.23"]) == {
        "101": ("3105557777", "EXTERNAL", "ANSWERED", "tenantA"),
        "102": ("3105557777", "EXTERNAL", "NO ANSWER", "tenantA"),
        "103": ("3105557777", "EXTERNAL", "NO ANSWER", "tenantA"),
    }
    # 5: 101 out through the trunk.
    assert _summary(calls["1796592294.8"]) == {
        "101": ("2125551234", "EXTERNAL", "ANSWERED", "tenantA"),
    }
    # 17: trunk -> DID 2125550137 -> 137 (tenant B).
    assert _summary(calls["1796592381.35"]) == {
        "137": ("7185550142", "EXTERNAL", "ANSWERED", "tenantB"),
    }
    # 20: 101 dials 199, a number with no phone behind it (CHANUNAVAIL): the Dial names it.
    assert _summary(calls["1796592390.38"]) == {
        "101": ("199", "INTERNAL", "FAILED", "tenantA"),
        "199": ("101", "INTERNAL", "FAILED", "tenantA"),
    }
    # One-party rows are no call with anyone: IVR 800 from a phone (13-15: Playback,
    # Hangup), the echo test 500 (16), originates nobody answered (A2, A3: AppDial2).
    for one_party in ("1796592366.32", "1796592371.33", "1796592376.34", "1796593079.224"):
        assert one_party not in calls, calls.get(one_party)
    # Trunk to IVR (13) and to an unknown DID (18): no extension at all.
    assert "1796592361.31" not in calls


def test_no_record_is_a_self_call_a_feature_number_or_an_empty_number(db_url, engine):
    _import(db_url)
    records = [r for call in _records(engine).values() for r in call.values()]
    assert records
    for record in records:
        assert record["user_ext"] not in {"500", "600", "700", "800"}, record
        assert record["phone_number"] not in {"", "s"}, record
        assert record["phone_number"] != record["user_ext"], record


def test_the_import_counts_rows_whose_callee_has_no_tenant(db_url, tmp_path):
    # Scenario 8 with the dialplan's Set(CDR(accountcode)) left out: a trunk caller
    # rings queue 600, no accountcode, no peeraccount (Master.csv without newcdrcolumns).
    line = next(x for x in MASTER.read_text().splitlines() if "1796592317.14" in x)
    untenanted = tmp_path / "Master.csv"
    untenanted.write_text(line.replace('"tenantA"', '""', 1) + "\n")
    result = CliRunner().invoke(import_cmd, [str(untenanted), "--usegmtime", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "1 rows rang an extension with no tenant (no peeraccount, no accountcode): "
        "partners scoped by accountcode do not see them; see docs/operators.md#tenants"
    )
