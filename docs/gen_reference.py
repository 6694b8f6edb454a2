"""Reference pages generated from the code, so they cannot drift from it.

Used by docs/hooks.py when MkDocs builds the site (the pages exist only in the built
site), and by tests/project/test_docs.py. Run ``python docs/gen_reference.py OUTDIR`` to write
them out as Markdown files to read without building the site.

- reference/protocol.md       from voip24h.wire.openapi.document() (the served /openapi.json)
- reference/errors.md         from the ApiError classes in voip24h.errors, plus ADVICE below
- reference/configuration.md  from voip24h.config.describe()
- reference/cli.md            from the --help of every voip24h command
- mapping.md examples         by gen_mapping.py, running voip24h.domain.mapping.records_for_call
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# What a partner should do about each errorCode. A new error class without an entry here
# fails the docs build and tests/project/test_docs.py: every error the server can send is documented.
ADVICE = {
    "invalid_json": "Send a valid JSON document (check quoting and escaping).",
    "invalid_request": "Send one JSON object with requestType, partnerSecret and data.",
    "missing_request_type": "Add requestType.",
    "invalid_request_type": 'requestType must be a string such as "getUser".',
    "unknown_request_type": "Use a request type listed in respMsg (names are case-sensitive).",
    "missing_data": "Add the data object, even for request types with few fields.",
    "invalid_data": "data must be a JSON object.",
    "missing_field": "Add the field named in respMsg to data.",
    "invalid_field": "Fix the type or value of the field named in respMsg.",
    "unknown_field": "Remove the field: it is not part of this request type (check spelling).",
    "invalid_user": 'user must be an extension of the PBX (e.g. "137"), not a trunk or name.',
    "invalid_date": "Dates are dd/mm/yyyy and must exist (31/02/2018 does not).",
    "date_range_reversed": "Swap fromDate and toDate.",
    "date_range_too_large": "Split the range into windows of at most max_range_days days.",
    "result_too_large": "Narrow the date range or a filter, or page with limit and cursor.",
    "request_too_complex": "Flatten the JSON: it nests deeper than the server accepts.",
    "value_too_long": "Shorten the string named in respMsg.",
    "invalid_cursor": "Send back nextCursor as received, with the same query; or start again.",
    "missing_secret": "Send partnerSecret (or Authorization: Bearer where the server accepts it).",
    "invalid_secret": "Check the secret; it may have been rotated or revoked: ask the operator.",
    "ops_unauthorized": "Operators only: send the ops token as Authorization: Bearer.",
    "user_not_permitted": "The extension is outside your scope: ask the operator to extend it.",
    "recording_path_refused": "Operators: the CDR's recordingfile points outside recordings_dir.",
    "link_invalid": "Use the link exactly as returned; request a new one.",
    "not_found": "Use POST /api/v1/partner/voip24h (check the path).",
    "call_not_found": "Check the callId; the call may be outside your scope or not imported yet.",
    "recording_not_found": "This call has no recording file.",
    "webhook_not_found": "Check the endpointId with webhookList; it may have been removed.",
    "webhook_url_refused": "Use a public https URL; operators may allow networks "
    "(webhook_allow_cidrs).",
    "too_many_webhooks": "Remove an endpoint with webhookRemove first.",
    "event_not_found": "Check the event id; events older than the retention are gone.",
    "method_not_allowed": "Use POST.",
    "link_expired": "Ask for a new link with recordingListen or recordingDownload.",
    "payload_too_large": "Send a smaller body (the limit is max_body_bytes).",
    "unsupported_media_type": "Send Content-Type: application/json.",
    "rate_limited": "Wait the seconds in Retry-After, then retry (voip24h.client does this).",
    "internal_error": "A bug on the server: report it with the time of the request.",
    "database_unavailable": "Retry after a short wait (voip24h.client does this).",
    "database_timeout": "Narrow the request (shorter range, a user, a filter), then retry.",
    "database_busy": "Wait the seconds in Retry-After, then retry (voip24h.client does this).",
    "server_busy": "Wait the seconds in Retry-After, then retry (voip24h.client does this).",
    "request_timeout": "Send the whole request at once; check the network to the server.",
    "header_too_large": "Send smaller headers (cookies, long tokens); the body carries the data.",
    "invalid_phone_number": "Send phoneNumber as 1 to 20 digits, with at most a leading +.",
    "idempotency_key_reused": "Use a new idempotencyKey for a different makeDial.",
    "pbx_unavailable": "Retry after Retry-After; operators: check ami_url and the PBX link.",
    "dial_outcome_unknown": "Do not retry blindly: the phone may be ringing; check the call.",
}


def error_classes() -> list[type]:
    """Every ApiError subclass, ordered by HTTP status, then errorCode."""
    from voip24h import errors

    found: dict[str, type] = {}
    stack = list(errors.ApiError.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        found.setdefault(cls.error_code, cls)  # type: ignore[attr-defined]
    return sorted(found.values(), key=lambda c: (c.status, c.error_code))  # type: ignore[attr-defined]


def undocumented_errors() -> list[str]:
    return [cls.error_code for cls in error_classes() if cls.error_code not in ADVICE]  # type: ignore[attr-defined]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def errors_page() -> str:
    missing = undocumented_errors()
    if missing:
        raise RuntimeError(f"add advice for these errorCodes to docs/gen_reference.py: {missing}")
    lines = [
        "# Error codes",
        "",
        "Every failure is answered with HTTP status that fits and the -1 envelope:",
        "",
        "```json",
        '{"respCode": -1, "respMsg": "<a sentence for people>", "errorCode": "<stable id>"}',
        "```",
        "",
        "Branch on `errorCode` (stable) and show `respMsg` (wording may improve). Retry only",
        "429 and 503, after the `Retry-After` seconds where given; any other error fails the",
        "same way every time until the request changes.",
        "",
        "*Generated from `voip24h/errors.py`.*",
        "",
        "| HTTP | errorCode | Typical respMsg | What to do |",
        "| ---: | --- | --- | --- |",
    ]
    for cls in error_classes():
        message = cls.default_message  # type: ignore[attr-defined]
        if message == "The request is not valid.":
            message = "(names the field or value at fault)"
        lines.append(
            f"| {cls.status} | `{cls.error_code}` | {_cell(message)} | "  # type: ignore[attr-defined]
            f"{_cell(ADVICE[cls.error_code])} |"  # type: ignore[attr-defined]
        )
    return "\n".join(lines) + "\n"


def configuration_page() -> str:
    from voip24h.config import describe

    lines = [
        "# Configuration reference",
        "",
        "Every setting has a default, and can be set in a TOML file (`--config FILE` or",
        "`VOIP24H_CONFIG`, keys as named here, optionally under a `[voip24h]` table), in",
        "the environment (`VOIP24H_<NAME>`), or, for some, by a command-line flag. Later",
        "sources win: defaults ← file ← environment ← flags. `voip24h settings` prints the",
        "same list.",
        "",
        "```toml",
        "# /etc/voip24h/voip24h.toml",
        "[voip24h]",
        'database_url = "postgresql://voip24h@127.0.0.1/voip24h"',
        'timezone = "Asia/Ho_Chi_Minh"',
        "```",
        "",
        "*Generated from `voip24h/config.py`.*",
        "",
    ]
    for name, env, default, help_text in describe():
        lines += [
            f"## `{name}`",
            "",
            help_text,
            "",
            f"- environment: `{env}`",
            f"- default: `{json.dumps(default)}`",
            "",
        ]
    return "\n".join(lines)


def _commands() -> Iterator[tuple[list[str], Any]]:
    import click

    from voip24h.cli.main import cli

    def walk(path: list[str], command: click.Command) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in sorted(command.list_commands(ctx)):
                sub = command.get_command(ctx, name)
                if sub is not None:
                    yield from walk([*path, name], sub)

    yield from walk([], cli)


def cli_page() -> str:
    from click.testing import CliRunner

    from voip24h.cli.main import cli

    lines = [
        "# Command line reference",
        "",
        "The output of `voip24h ... --help` for every command. See the",
        "[operator quick start](../operators.md) and [query guide](../cli.md) for how",
        "they fit together.",
        "",
        "*Generated from the commands' `--help`.*",
        "",
    ]
    runner = CliRunner()
    for path, _command in _commands():
        result = runner.invoke(
            cli, [*path, "--help"], prog_name="voip24h", terminal_width=100, env={"COLUMNS": "100"}
        )
        if result.exit_code != 0:
            raise RuntimeError(f"voip24h {' '.join(path)} --help failed: {result.output}")
        title = " ".join(["voip24h", *path])
        lines += [f"## `{title}`", "", "```text", result.output.rstrip(), "```", ""]
    return "\n".join(lines)


def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema or "oneOf" in schema:
        options = [
            s for s in schema.get("anyOf", schema.get("oneOf", [])) if s.get("type") != "null"
        ]
        return " or ".join(_schema_type(s) for s in options)
    if "enum" in schema:
        values = [f"`{json.dumps(v)}`" for v in schema["enum"]]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(k for k in kind if k != "null")
    if kind == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    extras = []
    for key, word in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "min"),
        ("maximum", "max"),
        ("maxItems", "max items"),
    ):
        if key in schema:
            extras.append(f"{word} {schema[key]}")
    if "pattern" in schema:
        extras.append(f"pattern `{schema['pattern']}`")
    return kind + (f" ({', '.join(extras)})" if extras else "")


def _schema_table(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [schema["description"].replace("``", "`"), ""]
    props = schema.get("properties")
    if not props:
        return [*lines, "```json", json.dumps(schema, indent=2), "```", ""]
    required = set(schema.get("required", []))
    lines += ["| Field | Type | Required | Notes |", "| --- | --- | --- | --- |"]
    for field, spec in props.items():
        notes = spec.get("description", "")
        if "default" in spec and spec["default"] is not None:
            notes = (notes + f" Default `{json.dumps(spec['default'])}`.").strip()
        lines.append(
            f"| `{field}` | {_cell(_schema_type(spec))} | {'yes' if field in required else 'no'} "
            f"| {_cell(notes)} |"
        )
    return [*lines, ""]


def protocol_page() -> str:
    from voip24h.wire.openapi import document

    doc = document()
    lines = [
        "# Protocol reference",
        "",
        f"{doc['info'].get('title', 'voip24h')} {doc['info'].get('version', '')}: the OpenAPI",
        "document every server serves at `/openapi.json` (and as interactive docs at",
        "`/docs`), rendered. For a guided tour see the [partner quick start](../partners.md);",
        "errors are listed in the [error code table](errors.md).",
        "",
        "*Generated from `voip24h/wire/openapi.py`.*",
        "",
        "## Endpoints",
        "",
    ]
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            lines += [f"### `{method.upper()} {path}`", "", f"**{op.get('summary', '')}**", ""]
            if op.get("description"):
                lines += [op["description"], ""]
            for param in op.get("parameters", []):
                lines.append(
                    f"- parameter `{param['name']}` ({param.get('in')}): "
                    f"{param.get('description', '')}"
                )
            lines += ["", "| Status | Meaning |", "| --- | --- |"]
            for status, response in op.get("responses", {}).items():
                lines.append(f"| {status} | {_cell(response.get('description', ''))} |")
            lines.append("")
    lines += [
        "## Request types",
        "",
        "`requestType` chooses what `data` must hold; each is detailed under Schemas.",
        "",
        "| requestType | data schema | required fields of data |",
        "| --- | --- | --- |",
    ]
    schemas = doc.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        kind = schema.get("properties", {}).get("requestType", {})
        if name.endswith("Request") and ("enum" in kind or "const" in kind):
            data_ref = schema["properties"]["data"].get("$ref", "").rsplit("/", 1)[-1]
            required = schemas.get(data_ref, {}).get("required", [])
            request_type = (kind.get("enum") or [kind.get("const")])[0]
            fields = ", ".join(f"`{f}`" for f in required) or "(none)"
            lines.append(f"| `{request_type}` | [{data_ref}](#{data_ref.lower()}) | {fields} |")
    lines += ["", "## Schemas", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        lines += _schema_table(name, schema)
    return "\n".join(lines)


PAGES = {
    "reference/protocol.md": protocol_page,
    "reference/errors.md": errors_page,
    "reference/configuration.md": configuration_page,
    "reference/cli.md": cli_page,
}


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "site-md")
    for name, build in PAGES.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(build(), encoding="utf-8")
        print(path)
    from gen_mapping import fill_mapping

    mapping = Path(__file__).with_name("mapping.md").read_text(encoding="utf-8")
    (out / "mapping.md").write_text(fill_mapping(mapping), encoding="utf-8")
    print(out / "mapping.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
