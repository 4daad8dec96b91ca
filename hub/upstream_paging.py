"""Reading every page of a paged upstream list, bounded: page numbers, offsets, or cursors.

An adapter gives a function that fetches one page and says what it held; the paginator
asks for the next until the list ends, and yields the items:

    async def page(number: int) -> Page:
        body = read_json(await self.http.get("/thua-dat", params={"trang": number, "soBanGhi": 50}))
        return Page(body["DanhSach"], total=body["TongSo"])

    items = [item async for item in numbered_pages(page, size=50)]

The list ends at a short or empty page, at `total` when the upstream says it, or at a
cursor that is missing. `max_items` bounds what one call may read (an upstream that never
ends a list, or a person with 100 000 parcels): past it, `UpstreamBadResponse`, never a
truncated answer passed off as whole; a cursor that comes back again is one too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hub.errors import UpstreamBadResponse

__all__ = ["CursorPage", "Page", "cursor_pages", "numbered_pages", "offset_pages"]

#: The most items one call reads through a paginator by default.
MAX_ITEMS = 10_000


@dataclass(frozen=True)
class Page:
    """One page of a numbered or offset list: its items, and the list's total if known."""

    items: Sequence[Any]
    total: int | None = None


@dataclass(frozen=True)
class CursorPage:
    """One page of a cursor list: its items and the next page's cursor (None: the end)."""

    items: Sequence[Any]
    next_cursor: str | None = None


def _too_many(max_items: int) -> UpstreamBadResponse:
    return UpstreamBadResponse(log_context={"cause": f"the list goes past {max_items} items"})


async def numbered_pages(
    fetch: Callable[[int], Awaitable[Page]],
    *,
    size: int,
    first: int = 1,
    max_items: int = MAX_ITEMS,
) -> AsyncIterator[Any]:
    """Items of pages `first`, `first + 1`, … of `size` items each."""
    seen, number = 0, first
    while True:
        page = await fetch(number)
        for item in page.items:
            seen += 1
            if seen > max_items:
                raise _too_many(max_items)
            yield item
        if len(page.items) < size or (page.total is not None and seen >= page.total):
            return
        number += 1


async def offset_pages(
    fetch: Callable[[int, int], Awaitable[Page]],
    *,
    limit: int,
    max_items: int = MAX_ITEMS,
) -> AsyncIterator[Any]:
    """Items of `fetch(offset, limit)` for offsets 0, `limit`, 2 × `limit`, …"""

    async def by_number(number: int) -> Page:
        return await fetch(number * limit, limit)

    async for item in numbered_pages(by_number, size=limit, first=0, max_items=max_items):
        yield item


async def cursor_pages(
    fetch: Callable[[str | None], Awaitable[CursorPage]],
    *,
    max_items: int = MAX_ITEMS,
) -> AsyncIterator[Any]:
    """Items of `fetch(None)`, then of `fetch(cursor)` for each next cursor given."""
    seen, cursor, cursors = 0, None, set()
    while True:
        page = await fetch(cursor)
        for item in page.items:
            seen += 1
            if seen > max_items:
                raise _too_many(max_items)
            yield item
        if not page.next_cursor or not page.items:
            return
        if page.next_cursor in cursors:
            raise UpstreamBadResponse(log_context={"cause": "a cursor came back again"})
        cursors.add(page.next_cursor)
        cursor = page.next_cursor
