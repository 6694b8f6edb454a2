"""Starting the systems under test, driving them with wrk, and reading their memory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PEERS_VENV = ROOT / "bench" / ".venv-peers"
LUA = ROOT / "bench" / "requests.lua"


@dataclass
class System:
    """One server to measure: how to start it and where it listens."""

    name: str
    backend: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    cwd: Path = ROOT
    ready_path: str = "/"
    workers: int = 1  # processes that each log "startup complete" when ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(child) for child in text)
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(_children(current))
    return pids


def rss_mb(pid: int, kind: str = "RssAnon") -> float:
    """Resident memory of a process tree, in MB: its anonymous memory (the heap) by
    default, since file pages of the memory-mapped database come and go with the OS
    page cache; ``kind="VmRSS"`` for the total."""
    total = 0
    for one in tree(pid):
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith(f"{kind}:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {timeout} s")


def _wait_workers(
    log: Path, offset: int, workers: int, proc: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while workers > 1 and time.monotonic() < deadline:
        with log.open("rb") as handle:
            handle.seek(offset)
            if handle.read().lower().count(b"startup complete") >= workers:
                return
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} while starting")
        time.sleep(0.2)


@contextmanager
def running(
    system: System, log_dir: Path, timeout: float = 120, log_name: str = ""
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``system`` until the block ends; its output goes to ``log_dir/NAME.log``
    (NAME: ``log_name``, else the system's name)."""
    system.port = system.port or free_port()
    port = str(system.port)
    argv = [arg.replace("{port}", port) for arg in system.argv]
    env = {**os.environ, **{k: v.replace("{port}", port) for k, v in system.env.items()}}
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{log_name or system.name}.log"
    with log_path.open("ab") as log:
        offset = log.tell()
        proc = subprocess.Popen(
            argv, cwd=system.cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            _wait_port(system.port, proc, timeout)
            # With several workers the parent listens before any worker is ready:
            # wait for every worker, or the first one up takes every connection.
            _wait_workers(log_path, offset, system.workers, proc, timeout)
            time.sleep(0.3)
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server we started (its process group), politely then firmly."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def ensure_wrk() -> str:
    """wrk, installed from Debian's packages when missing (needs root)."""
    found = wrk_path()
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (Debian package) ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = wrk_path()
    if not found:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return found


def drive(
    port: int,
    requests_file: Path,
    seconds: float,
    connections: int = 32,
    threads: int = 2,
    api_key: str = "",
    timeout: float = 30,
) -> dict[str, float]:
    """Run wrk against ``port`` with the rotating request mix; return its figures."""
    threads = min(threads, connections)  # wrk needs a connection per thread
    argv = [
        ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        f"--timeout={int(timeout)}s", "-s", str(LUA), f"http://127.0.0.1:{port}",
        "--", str(requests_file),
    ]  # fmt: skip
    env = {**os.environ, "BENCH_API_KEY": api_key}
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=seconds + timeout + 30, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            result: dict[str, float] = json.loads(line.removeprefix("BENCHJSON "))
            result["errors"] = (
                sum(
                    result[k]
                    for k in ("connect_errors", "read_errors", "write_errors", "status_errors")
                )
                + result["timeouts"]
            )
            return result
    raise RuntimeError(f"wrk gave no result: {done.stdout[-500:]} {done.stderr[-500:]}")
