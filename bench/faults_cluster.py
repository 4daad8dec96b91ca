"""The processes a fault scenario runs: the mocks it needs and one `hub serve` in front of
them, on free ports, on a fresh SQLite file in a temporary folder (or on `--database-url` /
`HUB_DATABASE_URL`), and what the scenario reads back from them (audit records, rows).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import HUB, PY, ROOT, Server, create_client, free_port

SECRET = "bench-faults-secret-0123456789abcdef"
PURPOSE = "bench"


class Cluster:
    """The mocks a scenario needs and one hub in front of them, on free ports, torn down
    together. The hub can be killed and started again on the same database and port."""

    def __init__(
        self,
        tmp: Path,
        services: list[str],
        *,
        database_url: str | None = None,
        hub_env: dict[str, str] | None = None,
        mock_options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.tmp = tmp
        self.ports = {name: free_port() for name in services}
        self.hub_port = free_port()
        self.hub = f"http://127.0.0.1:{self.hub_port}"
        url = database_url or os.environ.get("HUB_DATABASE_URL") or f"sqlite:///{tmp}/hub.db"
        self.database_url = url
        self.env = {
            **os.environ,
            "HUB_DATABASE_URL": url,
            "HUB_SECRET_KEY": os.environ.get("HUB_SECRET_KEY", SECRET),
            "HUB_AUDIT_ARCHIVE_DIR": str(tmp / "audit-archive"),
            "HUB_ENABLED_ADAPTERS": json.dumps(services),
            **{
                f"HUB_{name.upper().replace('-', '_')}_BASE_URL": self.mock(name)
                for name in services
            },
            **(hub_env or {}),
        }
        self.mock_options = mock_options or {}
        self.mocks: list[Server] = []
        self.hub_server: Server | None = None
        self._hub_starts = 0

    def mock(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, client_allow: list[str]) -> dict[str, str]:
        """Start every mock, create the scenario's client, start the hub; returns the client."""
        for name, port in self.ports.items():
            options = {"fault_options": [], **self.mock_options.get(name, {})}
            env = {**self.env, "MOCKS_APP": name, "MOCKS_OPTIONS": json.dumps(options)}
            args = [
                *(PY, "-m", "uvicorn", "--factory", "mocks:app_from_env"),
                *("--port", str(port), "--log-level", "warning"),
            ]
            log = self.tmp / f"mock-{name}.log"
            self.mocks.append(Server(args, env, f"{self.mock(name)}/_mock/health", log).start())
        # While the mocks start: the client (which also migrates the database).
        name = f"faults-{secrets.token_hex(4)}"
        client = create_client(self.env, name, client_allow, [PURPOSE])
        self.start_hub()
        for mock in self.mocks:
            mock.wait_healthy()
        return client

    def start_hub(self) -> float:
        """Start `hub serve` and wait for /health; returns the seconds it took."""
        started = time.monotonic()
        self._hub_starts += 1
        args = [*HUB, "serve", "--port", str(self.hub_port), "--log-level", "warning"]
        log = self.tmp / f"hub-{self._hub_starts}.log"
        self.hub_server = Server(args, self.env, f"{self.hub}/health", log).start()
        self.hub_server.wait_healthy()
        return time.monotonic() - started

    def kill_hub(self) -> None:
        assert self.hub_server is not None
        self.hub_server.kill()

    def stop_hub(self) -> None:
        if self.hub_server is not None:
            self.hub_server.stop()

    def close(self) -> None:
        self.stop_hub()
        for mock in self.mocks:
            mock.stop()

    def audit_verify(self) -> dict[str, Any]:
        """`hub audit verify`: its exit status and what it printed."""
        done = subprocess.run(
            [*HUB, "audit", "verify"], env=self.env, cwd=ROOT, capture_output=True, text=True
        )
        output = " ".join((done.stdout + done.stderr).split())
        return {"exit": done.returncode, "output": output[:300]}

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of a read-only query on the hub's database."""
        from sqlalchemy import text

        from hub.core.db import make_engine

        engine = make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(text(sql), params).mappings().all()]
        finally:
            engine.dispose()

    def audit_records(self, prefix: str) -> dict[str, list[dict[str, Any]]]:
        """The audit records of every request id starting with `prefix`, by request id."""
        rows = self.query(
            "SELECT request_id, service, operation, status, code, upstream_ms FROM audit_records "
            "WHERE request_id LIKE :prefix",
            prefix=prefix + "%",
        )
        found: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            found.setdefault(row["request_id"], []).append(row)
        return found


@contextlib.contextmanager
def cluster(services: list[str], **options: Any) -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix="hub-faults-") as tmp:
        running = Cluster(Path(tmp), services, **options)
        try:
            yield running
        except BaseException:
            if running.hub_server is not None:
                print(f"hub log (tail):\n{running.hub_server.tail()}", file=sys.stderr)
            raise
        finally:
            running.close()
