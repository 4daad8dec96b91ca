"""Health probes of the database and of each adapter's upstream, cached briefly."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.engine import Engine

from hub.adapter import Health
from hub.core.registry import AdapterRegistry, LoadedAdapter

PROBE_TIMEOUT_S = 2.0


class HealthMonitor:
    """Runs probes on demand; results are reused for `cache_s` so /ready cannot hammer upstream."""

    def __init__(self, registry: AdapterRegistry, engine: Engine, cache_s: float) -> None:
        self._registry, self._engine, self._cache_s = registry, engine, cache_s
        self._cached: tuple[float, dict[str, Health]] | None = None
        self._lock = asyncio.Lock()

    async def adapters(self) -> dict[str, Health]:
        """Each adapter's upstream health (probed concurrently, each within 2 s)."""
        async with self._lock:
            now = time.monotonic()
            if self._cached is None or self._cached[0] <= now:
                loaded = list(self._registry)
                results = await asyncio.gather(*(self._probe(a) for a in loaded))
                self._cached = (
                    now + self._cache_s,
                    {a.cls.name: h for a, h in zip(loaded, results, strict=True)},
                )
            return self._cached[1]

    @staticmethod
    async def _probe(loaded: LoadedAdapter) -> Health:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                health = await loaded.instance.health()
        except TimeoutError:
            health = Health(ok=False, detail="probe timed out")
        except Exception as exc:  # a probe must never take /ready down with it
            health = Health(ok=False, detail=f"probe failed: {type(exc).__name__}")
        latency = round((time.perf_counter() - started) * 1000, 2)
        return Health(ok=health.ok, detail=health.detail, latency_ms=latency)

    async def database(self) -> Health:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.to_thread(self._ping), PROBE_TIMEOUT_S)
        except Exception as exc:
            return Health(ok=False, detail=f"database unreachable: {type(exc).__name__}")
        return Health(ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2))

    def _ping(self) -> None:
        with self._engine.connect() as conn:
            conn.execute(text("SELECT 1"))
