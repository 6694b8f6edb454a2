"""AMI parsing speed: our MessageReader against panoramisk 1.4 on the Asterisk 20 firehose.

``.venv/bin/python -m bench.ami_parse [--chunk 65536] [--repeat 5]``

Both parse the same server bytes (tests/fixtures/ami/firehose_pass1.txt, the banner and
client actions left out) fed in chunks of ``--chunk`` bytes, as a socket would give
them; the best of ``--repeat`` runs is reported as messages per second. panoramisk is
optional (``pip install panoramisk``): without it only our reader is measured.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from voip24h.pbx.live import LiveCalls
from voip24h.pbx.protocol import MessageReader

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ami"
FIXTURE = FIXTURES / "firehose_pass1.txt"


def server_bytes() -> bytes:
    """The firehose's server bytes after the banner, client actions removed."""
    data = FIXTURE.read_bytes().partition(b"\r\n")[2]
    blocks = [b for b in data.split(b"\r\n\r\n") if b and not b.startswith(b"Action: ")]
    return b"".join(block + b"\r\n\r\n" for block in blocks)


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def ours(parts: list[bytes]) -> int:
    reader = MessageReader()
    return sum(len(reader.feed(part)) for part in parts)


def ours_with_live_calls(parts: list[bytes]) -> int:
    from voip24h.domain.mapping import ExtensionMatcher

    reader, live, count = MessageReader(), LiveCalls(ExtensionMatcher().of_channel), 0
    for part in parts:
        for message in reader.feed(part):
            live.feed(message)
            count += 1
    return count


def panoramisk(parts: list[bytes]) -> int:
    # It hands events to dispatch and drops responses nobody waits for (the Login and
    # Logoff ones here), so it counts 2 messages fewer for the same bytes.
    from panoramisk.ami_protocol import AMIProtocol

    count = 0

    class Factory:
        save_stream = None

        def dispatch(self, message: object) -> None:
            nonlocal count
            count += 1

    protocol = AMIProtocol()
    protocol.connection_made(None)
    protocol.factory = Factory()
    protocol.version = "9.0.0"  # the banner was read already, as in ours
    for part in parts:
        protocol.data_received(part)
    return count


def best(run: Callable[[list[bytes]], int], parts: list[bytes], repeat: int) -> tuple[int, float]:
    times, count = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = run(parts)
        times.append(time.perf_counter() - started)
    return count, min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, default=65536)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = server_bytes()
    parts = chunks(data, args.chunk)
    print(f"{len(data)} bytes in {len(parts)} chunks of {args.chunk}")
    runs: list[tuple[str, Callable[[list[bytes]], int]]] = [
        ("voip24h MessageReader", ours),
        ("voip24h MessageReader + LiveCalls", ours_with_live_calls),
    ]
    try:
        import panoramisk as _  # noqa: F401
    except ImportError:
        print("panoramisk not installed: skipped")
    else:
        runs.append(("panoramisk 1.4 AMIProtocol", panoramisk))
    for name, run in runs:
        count, seconds = best(run, parts, args.repeat)
        print(f"{name:36s} {count:6d} messages  {seconds * 1000:8.1f} ms  "
              f"{count / seconds:10,.0f} messages/s")


if __name__ == "__main__":
    main()
