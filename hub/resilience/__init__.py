"""Resilience around every upstream call: retries with back-off and deadline (retry), the
circuit breaker (circuit) and its state shared across processes through Redis (circuit_sync)."""
