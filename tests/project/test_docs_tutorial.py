"""docs/tutorial.md, run as written: a newcomer's path from nothing to records.

Every ```sh block preceded by ``<!-- run -->`` runs, in order, in one bash session in a
fresh clone of the repository (its committed files, as a newcomer gets them). The install
block is the only one not run: the test uses the project's own virtualenv, first on
PATH, as the page's `. .venv/bin/activate` would. A ``<!-- run: background -->``
block is the server, left running while the rest run. Each ``<!-- output -->`` block
must equal what the run block before it printed. Port 8024 is replaced by a free port.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
MARKER = re.compile(r"<!-- (run|run: background|output) -->")


@dataclass
class Step:
    kind: str
    code: str
    expected: str | None = None


def steps(markdown: str) -> list[Step]:
    lines = markdown.splitlines()
    found: list[Step] = []
    index = 0
    while index < len(lines):
        match = MARKER.fullmatch(lines[index].strip())
        index += 1
        if not match:
            continue
        while not lines[index].startswith("```"):
            index += 1
        end = index + 1
        while lines[end] != "```":
            end += 1
        code = "\n".join(lines[index + 1 : end])
        if match.group(1) == "output":
            assert found and found[-1].kind == "run", "an output block must follow a run block"
            found[-1].expected = code
        else:
            found.append(Step(match.group(1), code))
        index = end + 1
    return found


def script(all_steps: list[Step], port: int) -> str:
    out = [
        "set -euo pipefail",
        "trap 'test -f server.pid && kill $(cat server.pid) 2>/dev/null || true' EXIT",
    ]
    for number, step in enumerate(all_steps):
        code = step.code.replace("8024", str(port))
        out.append(f"printf '\\n@@@ step {number}\\n'")
        if step.kind == "run: background":
            assert "\n" not in code, "a background block must be one command"
            out.append(f"( exec {code} ) > server.log 2>&1 &")
            out.append("echo $! > server.pid")
            out.append(
                f"for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break;"
                " sleep 0.1; done"
            )
        else:
            out.append(code)
    return "\n".join(out) + "\n"


def fresh_clone(target: Path) -> Path:
    """A clone of the repository's committed files (what a newcomer gets from git).

    Outside a git checkout (an unpacked release), a copy of examples/ stands in.
    """
    if (ROOT / ".git").exists() and shutil.which("git"):
        subprocess.run(
            ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)],
            check=True,
            capture_output=True,
            timeout=120,
        )
    else:
        shutil.copytree(ROOT / "examples", target / "examples")
    return target


def test_the_tutorial_steps_are_well_formed():
    found = steps(TUTORIAL.read_text(encoding="utf-8"))
    kinds = [s.kind for s in found]
    assert kinds.count("run: background") == 1
    assert sum(1 for s in found if s.expected is not None) >= 4
    assert any("curl" in s.code for s in found)
    assert any("voip24h query" in s.code for s in found)
    assert any("voip24h.client" in s.code for s in found)


def test_a_newcomer_gets_records_with_curl_the_cli_and_the_client(tmp_path):
    found = steps(TUTORIAL.read_text(encoding="utf-8"))
    workdir = fresh_clone(tmp_path / "voip24h")
    bindir = str(Path(sys.executable).parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("VOIP24H_") and key not in {"PYTHONPATH", "COLUMNS"}
    }
    env.update(PATH=bindir + os.pathsep + env.get("PATH", ""), HOME=str(tmp_path))
    port = free_port()
    result = subprocess.run(
        ["bash", "-c", script(found, port)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    server_log = workdir / "server.log"
    assert result.returncode == 0, (
        f"stderr:\n{result.stderr}\nstdout:\n{result.stdout}\nserver log:\n"
        + (server_log.read_text() if server_log.exists() else "(none)")
    )
    outputs = re.split(r"^@@@ step \d+\n", result.stdout, flags=re.MULTILINE)[1:]
    assert len(outputs) == len(found)
    for step, output in zip(found, outputs, strict=True):
        if step.expected is not None:
            assert output.strip("\n") == step.expected.replace("8024", str(port)), step.code
