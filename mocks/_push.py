"""What the mocks that push to the hub share: where to push, the retry loop, the tasks.

The judicial-records mock pushes each final result, signed in headers over a fixed body;
the payment mock sends its IPN, signed inside a body rebuilt at each attempt, and stops on
409. Both go through `deliver`: one attempt after another with doubling back-off, each
built fresh by the caller, until the receiver has it or the attempts run out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

__all__ = ["Delivery", "PushTarget", "TaskSet", "deliver"]

log = logging.getLogger("mocks.push")

Delivery = Literal["delivered", "failed", "off"]


@dataclass
class PushTarget:
    """Where pushes go; settable at run time (`app.state.push`). `url=None`: no pushes."""

    url: str | None
    transport: httpx.AsyncBaseTransport | None = None


async def deliver(
    target: PushTarget,
    message: Callable[[], tuple[bytes, Mapping[str, str]]],
    *,
    label: str,
    attempts: int,
    backoff_s: float,
    sleep: Callable[[float], Awaitable[None]],
    on_attempt: Callable[[], None],
    accepted: Callable[[int], bool] = lambda status: 200 <= status < 300,
    timeout_s: float = 10.0,
    logger: logging.Logger = log,
) -> Delivery:
    """POST `message()` (body and headers, built anew for each attempt) until an answer
    `accepted` says the receiver has it ("delivered"), or `attempts` run out ("failed"), or
    the target is switched off ("off"). `label` names what is pushed in the log: an id,
    never personal data."""
    for attempt in range(1, attempts + 1):
        if target.url is None:
            return "off"
        on_attempt()
        body, headers = message()
        problem = await _post(target, target.url, body, headers, accepted, timeout_s)
        if problem is None:
            return "delivered"
        logger.info("push of %s failed (%s), attempt %d of %d", label, problem, attempt, attempts)
        if attempt < attempts:
            await sleep(backoff_s * 2 ** (attempt - 1))
    return "failed"


async def _post(
    target: PushTarget,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    accepted: Callable[[int], bool],
    timeout_s: float,
) -> str | None:
    """None when the receiver took it, else what went wrong (a status or an error name)."""
    try:
        async with httpx.AsyncClient(transport=target.transport, timeout=timeout_s) as client:
            response = await client.post(url, content=body, headers=dict(headers))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return type(exc).__name__
    return None if accepted(response.status_code) else f"HTTP {response.status_code}"


class TaskSet:
    """The background tasks of a mock (its pushes): started, counted, cancelled at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __len__(self) -> int:
        return len(self._tasks)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
