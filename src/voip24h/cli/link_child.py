"""The PBX link of ``voip24h serve`` in a child process of its own (``voip24h pbx``).

At 10,000 AMI events/s the link's parsing, live-call state and outbox transactions
take several percent of a CPU. Inside a worker they share its event loop and GIL with
the partner API (whose SQLite reads run on that loop), which then answers later; in
a child they do not. The child gets the server's settings through VOIP24H_*
variables, runs only while it holds the pbx-link lease like any link, is started
again (after ``restart_seconds``) if it dies (not when it exits cleanly: Ctrl-C
reaches it too), and is stopped with the server.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from voip24h.config import Settings, env_name

log = logging.getLogger(__name__)


def link_environment(settings: Settings) -> dict[str, str]:
    """The environment a ``voip24h pbx`` child needs to run with ``settings``."""
    env = dict(os.environ)
    for name, value in vars(settings).items():
        env[env_name(name)] = str(value)
    return env


class LinkChild:
    """Keeps one ``voip24h pbx`` child running between :meth:`start` and :meth:`stop`."""

    def __init__(self, settings: Settings, *, restart_seconds: float = 1.0):
        self.argv = [sys.executable, "-m", "voip24h", "pbx"]
        self.env = link_environment(settings)
        self.restart_seconds = restart_seconds
        self.starts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[Any] | None = None
        self._watcher = threading.Thread(target=self._watch, name="voip24h-pbx-child", daemon=True)

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        """Start the child and the thread that restarts it."""
        self._spawn()
        self._watcher.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child (SIGTERM, then SIGKILL after ``timeout``) and its watcher."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._watcher.is_alive():
            self._watcher.join(timeout)

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            # our own interpreter and module, no shell, nothing from a request
            self._proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL)  # noqa: S603
            self.starts += 1

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            code = proc.wait() if proc is not None else None
            if self._stopping.is_set():
                return
            if code == 0:  # it was asked to stop (Ctrl-C reaches the whole group)
                log.info("PBX link process stopped")
                return
            log.warning(
                "PBX link process exited (%s); starting it again in %g s",
                code,
                self.restart_seconds,
            )
            if self._stopping.wait(self.restart_seconds):
                return
            self._spawn()


def serve_with_link(settings: Settings, serve: Any) -> None:
    """Run ``serve(settings)``; when the link belongs in serve and in a process of its
    own, with a ``voip24h pbx`` child beside it and the workers' own link off."""
    if not (settings.ami_url and settings.pbx_link_in_serve and settings.pbx_link_process):
        serve(settings)
        return
    # uvicorn ends by raising the signal it caught again, with the handler it found: the
    # default one would kill this process before the child is stopped.
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    child = LinkChild(settings)
    child.start()
    try:
        serve(settings.replace(pbx_link_in_serve=False))
    finally:
        child.stop()
        signal.signal(signal.SIGTERM, previous)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)
