"""The docs site builds with `mkdocs build --strict`, offline, and documents everything.

The reference pages are generated from the code while the site builds; these tests
fail when an error code, a setting, a command or a request type is missing from them,
or when a page links to something that does not exist.
"""

from __future__ import annotations

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from voip24h.config import describe
from voip24h.wire import protocol

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load("gen_reference")
mapping = _load("gen_mapping")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
    )
    assert result.returncode == 0, result.stderr
    return out


def _text(site: Path, page: str) -> str:
    raw = (site / page / "index.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def test_site_builds_strict_with_every_page(site):
    for page in ["tutorial", "operators", "partners", "client", "cli", "examples", "mapping"]:
        assert (site / page / "index.html").exists(), page
    for page in ["protocol", "errors", "configuration", "cli"]:
        assert (site / "reference" / page / "index.html").exists(), page


def test_site_needs_no_internet(site):
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', text)
        assert remote == [], f"{page.relative_to(site)} loads {remote}"


def test_every_error_code_has_advice_and_a_row(site):
    assert gen.undocumented_errors() == []
    text = _text(site, "reference/errors")
    for cls in gen.error_classes():
        assert re.search(rf"{cls.status}\s*{cls.error_code}", text), cls.error_code


def test_an_error_without_advice_fails_the_build():
    from voip24h import errors

    class BrandNewError(errors.ApiError):
        error_code = "brand_new_error"

    try:
        assert gen.undocumented_errors() == ["brand_new_error"]
        with pytest.raises(RuntimeError, match="brand_new_error"):
            gen.errors_page()
    finally:
        del BrandNewError
        import gc

        gc.collect()


def test_every_setting_is_documented(site):
    text = _text(site, "reference/configuration")
    for name, env, _default, help_text in describe():
        assert len(help_text.split()) >= 3, f"setting {name} needs a real help text"
        assert name in text and env in text, name
        assert " ".join(help_text.replace("`", "").split()) in " ".join(text.split()), name


def test_every_command_has_its_help(site):
    text = _text(site, "reference/cli")
    for path, command in gen._commands():
        title = " ".join(["voip24h", *path])
        assert title in text, title
        summary = (command.help or "").split("\n")[0].strip()
        assert " ".join(summary.split()) in " ".join(text.split()), title
    assert "Exit codes:" in text
    assert "Usage: voip24h query user [OPTIONS] USER" in text


def test_every_request_type_is_in_the_protocol_reference(site):
    text = _text(site, "reference/protocol")
    summary = text.rsplit("Request types", 1)[1]
    for request_type, struct in protocol.DATA_TYPES.items():
        assert f"{request_type} {struct.__name__}" in " ".join(summary.split()), request_type


def test_mapping_examples_are_what_records_py_makes(site):
    queue = mapping.mapping_records("queue")
    assert [(r["user"], r["callStatus"], r["callDate"]) for r in queue] == [
        ("102", "ANSWERED", "2018-07-26 10:00:01"),
        ("101", "NO ANSWER", "2018-07-26 10:00:00"),
    ]
    internal = mapping.mapping_records("internal")
    assert {(r["user"], r["phoneNumber"], r["callType"]) for r in internal} == {
        ("101", "137", "INTERNAL"),
        ("137", "101", "INTERNAL"),
    }
    assert mapping.mapping_records("ivr") == []
    by_caller = mapping.mapping_records("transfer-by-caller")
    assert {(r["callId"], r["user"]) for r in by_caller} == {
        ("1532768400.128100", "101"),
        ("1532768400.128100", "102"),
        ("1532768400.128100", "103"),
    }
    attended = mapping.mapping_records("attended-transfer")
    assert {r["callId"] for r in attended} == {"1532772000.128200", "1532772022.128202"}
    stock = mapping.mapping_records("stock")
    assert {(r["callId"], r["user"]) for r in stock} == {
        ("1532847600.62", "101"),
        ("1532847600.62", "102"),
    }
    for one_party in ("conference", "ivr"):
        assert mapping.mapping_records(one_party) == []
    text = _text(site, "mapping")
    assert "mapping-example" not in text
    assert '"callId": "1532767500.128005"' in text and "becomes no records." in text


def test_readme_links_point_at_pages_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links, "the README should link to the docs"
    for link in links:
        assert (ROOT / link).exists(), link


def test_pages_of_other_work_appear_in_the_nav_once_written(tmp_path):
    import sys as _sys

    _sys.path.insert(0, str(ROOT / "docs"))
    try:
        hooks = _load("hooks")
    finally:
        _sys.path.remove(str(ROOT / "docs"))
    nav = [
        {"Home": "index.md"},
        {"Operators": [{"Security": "security.md"}, {"Benchmarks": "benchmarks.md"}]},
        {"Mine": "missing-but-mine.md"},
    ]
    (tmp_path / "security.md").write_text("# Security\n")
    assert hooks._prune(nav, tmp_path) == [
        {"Home": "index.md"},
        {"Operators": [{"Security": "security.md"}]},
        {"Mine": "missing-but-mine.md"},  # not optional: --strict reports it
    ]
