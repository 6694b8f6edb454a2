"""Parsing an import file in worker processes; batches come back in file order.

Each worker reads the whole file and splits it into records (cheap), but parses,
maps and encodes only its share of the batches: batch ``i`` (every ``batch_size``
records, good or bad) is worker ``i % workers``'s. The importing process takes the
batches round-robin, so they arrive in file order and the rejects in line order.
Workers send through pipes, which block them until their batch is taken: each is
at most one batch ahead, so memory stays flat whatever the file's size. They never
touch the database; every insert and commit is the importing process's.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from voip24h.ingest.csvstream import RecordSplitter
from voip24h.ingest.rows import RowParser
from voip24h.ingest.source import ReadError, Source, parse_batch, record_batches, records


@dataclass(frozen=True)
class Job:
    """What a worker needs to parse its batches of one file."""

    path: str
    columns: tuple[str, ...]
    zone: ZoneInfo
    usegmtime: bool
    delimiter: str
    batch_size: int
    encode: Callable[[list[dict[str, Any]]], Any]  # Loader.encode_batch


class WorkerFailed(RuntimeError):
    """A parsing worker raised or died; the message says why."""


def default_workers() -> int:
    """Two workers where there are two cores or more: one cannot keep the writer busy."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def parsed_batches(job: Job, workers: int) -> Iterator[tuple[Any, list[Any], int]]:
    """(encoded batch, its rejects, file position after it), in file order.

    A file that cannot be read to its end ends the batches with ``ReadError`` raised
    here, after every batch read before the damage.
    """
    context = multiprocessing.get_context("fork")
    pipes, processes = [], []
    try:
        for index in range(workers):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_work, args=(job, index, workers, receiver, sender), daemon=True
            )
            process.start()
            sender.close()  # so a worker that dies is an EOF here
            pipes.append(receiver)
            processes.append(process)
        turn = 0
        while True:
            kind, *message = _receive(pipes[turn], processes[turn])
            if kind == "end":
                for other in range(workers):  # the others have ended too; say why first
                    if other != turn:
                        _receive(pipes[other], processes[other])
                if message[0]:
                    raise ReadError(message[0])
                return
            yield message[0], message[1], message[2]
            turn = (turn + 1) % workers
    finally:
        for pipe in pipes:
            pipe.close()
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


def _receive(pipe: Any, process: Any) -> list[Any]:
    try:
        message: list[Any] = list(pipe.recv())
    except EOFError:
        process.join()
        message = ["fail", f"exited with code {process.exitcode}"]
    if message[0] == "fail":
        raise WorkerFailed(f"the parsing worker failed: {message[1]}")
    return message


def _work(job: Job, index: int, workers: int, receiver: Any, sender: Any) -> None:
    """Worker process: send ("batch", encoded, rejects, position) for each of its batches,
    then ("end", read error or None); or ("fail", why). If the importing process dies,
    the pipe has no reader left and the next send ends the worker."""

    receiver.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the importing process's to handle
    try:
        with Source(job.path) as source:
            parser = RowParser(job.columns, job.zone, job.usegmtime, job.delimiter)
            raw = records(source, RecordSplitter(len(job.columns), delimiter=job.delimiter))
            error = None
            try:
                for number, batch in enumerate(record_batches(raw, job.batch_size)):
                    if number % workers == index:
                        rows, rejected = parse_batch(parser, batch)
                        sender.send(("batch", job.encode(rows), rejected, source.position()))
            except ReadError as exc:
                error = str(exc)
            sender.send(("end", error))
    except BrokenPipeError:
        os._exit(1)  # the importing process is gone
    except Exception as exc:
        sender.send(("fail", f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()
