"""What the benchmarks share: starting the mocks and the hub as real processes, waiting for
them, stopping (or killing) them, creating a client, and percentiles.

bench/run.py and bench/profile.py import this module as `common` (run as scripts, bench/ is
on the path); the fault scenarios (bench/faults*.py) and the tests import it as `bench.common`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HUB = [PY, "-m", "hub.cli"]


def free_port() -> int:
    """A port nobody listens on now (the OS's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile of `values` (seconds) in milliseconds; nan when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Server:
    """One server process in a process group of its own, its output in a log file (a pipe
    nobody reads would fill up and stall a server that logs every failed call)."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        health_url: str,
        log: Path | None = None,
    ) -> None:
        self.args, self.env, self.health_url = args, env, health_url
        if log is None:
            handle, name = tempfile.mkstemp(prefix="bench-", suffix=".log")
            os.close(handle)
            log = Path(name)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def start(self) -> Server:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_healthy(self, timeout: float = 60) -> Server:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{' '.join(self.args)} exited: {self.tail()}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"{self.health_url} did not come up in {timeout} s: {self.tail()}")

    def tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        self._close()

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the process group and wait; SIGKILL it if it does not stop in time."""
        self._signal(signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], health_url: str) -> Iterator[Server]:
    """A server for the length of a `with` block, up and healthy inside it."""
    server = Server(args, env, health_url)
    try:
        yield server.start().wait_healthy()
    finally:
        server.stop()
        server.log.unlink(missing_ok=True)


def wait_healthy(url: str, timeout: float = 30) -> None:
    """Wait until `url` answers 200 (for a server started elsewhere)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up in {timeout} s")


def get_json(url: str, timeout: float = 10) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)  # type: ignore[no-any-return]


def send_json(
    method: str, url: str, body: object | None = None, timeout: float = 10
) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)  # type: ignore[no-any-return]


def fetch_ids(mock: str, count: int) -> list[str]:
    """Personal IDs the population mock knows."""
    return [r["personal_id"] for r in get_json(f"{mock}/_mock/records?limit={count}")["records"]]


def create_client(
    env: dict[str, str], name: str, allow: Sequence[str], purposes: Sequence[str]
) -> dict[str, str]:
    """`hub clients create` (which also migrates the database); returns client_id, api_key."""
    args = [*HUB, "clients", "create", name]
    for grant in allow:
        args += ["--allow", grant]
    for purpose in purposes:
        args += ["--purpose", purpose]
    created = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
    if created.returncode != 0:
        raise SystemExit(f"hub clients create failed: {created.stderr[-2000:]}")
    return json.loads(created.stdout)  # type: ignore[no-any-return]
