"""The checks of an adapter's event types (hub.events): the catalogue entry of each, a
sample per type, the events its change feed gives held to the declaration, the feed's
cursor and repeats, and a garbage page. An adapter that declares no event type passes
them all (there is nothing to check).

For an event type read from a change feed (`source="feed"`), the sample (`events`) makes
one such event happen in the mock; the kit then reads the adapter's `changes()` and the
hub's feed poller stores what it gives. For one published by a capability when a push
comes (`source="push"`), the sample is the payload that capability publishes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from hub.errors import HubError
from hub.events import ChangePage, EventType, UpstreamEvent, value_at
from hub.testing.base import ConformanceBase, _over_events
from hub.testing.client import ConformanceHub
from hub.testing.faults import CANARY, Fault
from hub.testing.leaks import _answer_strings, _assert_clean, _forbidden
from hub.testing.pipeline_checks import _dangling_refs, _has_object_schema
from hub.testing.samples import run_event_sample

#: Events asked of `changes()` per page, and pages read at most to reach a feed's end.
_PAGE = 100
_MAX_PAGES = 50
#: How long one `changes()` call may take against the in-process mock.
_READ_BOUND_S = 10.0
#: The garbage pages a feed must refuse with its own error.
_GARBAGE: tuple[Fault, ...] = ("malformed", "scrambled")


class EventChecks(ConformanceBase):
    """The battery's checks of the event types an adapter declares."""

    # -- 10. the catalogue entries and the samples -------------------------------------------

    def test_event_types_in_the_catalogue(self) -> None:
        """Each event type's catalogue entry is JSON, named `SERVICE:NAME`, with a payload
        JSON Schema object whose references resolve; the declarations hold together."""
        adapter = self._adapter_cls()
        problems = adapter.contract_problems()
        assert not problems, f"{adapter.name}: the declarations break the contract: {problems}"
        entries = adapter.describe()["events"]
        json.dumps(entries, allow_nan=False)
        for entry, kind in zip(entries, adapter.event_types, strict=True):
            assert entry["name"] == kind.qualified(adapter.name), entry["name"]
            schema = entry["payload_schema"]
            assert _has_object_schema(schema), (
                f"{entry['name']}: the payload schema is not an object schema: {schema}"
            )
            dangling = _dangling_refs(schema)
            assert not dangling, f"{entry['name']}: payload schema, unresolved $ref {dangling}"

    def test_event_samples_cover_the_event_types(self) -> None:
        """Every event type has a sample in `events`, and every sample names an event type:
        a feed type's is a function (it makes an event happen upstream), a push type's a
        payload (or a function returning one) that fits the payload model."""
        cls = type(self)
        declared = {e.name: e for e in self._adapter_cls().event_types}
        strays = sorted(set(cls.events) - set(declared))
        assert not strays, f"`events` names no such event type: {strays}"
        missing = sorted(set(declared) - set(cls.events))
        assert not missing, (
            f"event types with no sample in `events`: {missing} (for a feed type, a function "
            "of the kit that makes one happen in the mock; see docs/conformance.md)"
        )
        for name, sample in cls.events.items():
            kind = declared[name]
            if kind.source == "feed":
                assert callable(sample), (
                    f"`events[{name!r}]`: a feed event type's sample is a function of the kit "
                    "that makes one such event happen in the mock"
                )
            elif not callable(sample):
                try:
                    kind.payload.model_validate(dict(sample))
                except Exception as exc:
                    raise AssertionError(
                        f"`events[{name!r}]` is not a valid {kind.payload.__name__}: {exc}"
                    ) from exc

    # -- 11. a feed's events fit their declaration -------------------------------------------

    @_over_events("feed")
    def test_feed_event_fits_its_declaration(self, event_type: str, tmp_path: Path) -> None:
        """The sample makes an event the adapter's `changes()` gives as the declared type:
        its payload the declared model, valid against the catalogue's JSON Schema, a
        stable key, a personal ID at a subject path when it carries personal data; and the
        hub's feed poller stores it with its subjects."""
        kind = self._event_type(event_type)

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                start = (await self._read_feed(kit, None))[1]
                await run_event_sample(kit, self._event_sample(event_type))
                found = self._of_type(kind, (await self._read_feed(kit, start))[0])
                problems = [p for event in found for p in self._misfits(kit, kind, event)]
                assert not problems, f"{kind.qualified(kit.service)}: " + "; ".join(problems)
                await self._poll_feed(kit)
                rows = self._stored(kit, kind)
                assert rows, (
                    f"{kind.qualified(kit.service)}: the hub's feed poller stored none "
                    "(hub_event_feed_errors_total says why)"
                )
                if kind.personal_data:
                    assert all(rows), f"{kind.qualified(kit.service)}: stored without a subject"

        self._run(check)

    # -- 12. the cursor moves on, a repeated page adds nothing -------------------------------

    @_over_events("feed")
    def test_feed_cursor_advances_and_a_repeat_adds_nothing(
        self, event_type: str, tmp_path: Path
    ) -> None:
        """After a page with the sample's event the cursor is another, and reading from it
        does not give the event again; the same page read twice gives its events the same
        keys, so the hub, its cursor lost and the feed read again, stores none twice."""
        kind = self._event_type(event_type)

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                name = kind.qualified(kit.service)
                start = (await self._read_feed(kit, None))[1]
                await run_event_sample(kit, self._event_sample(event_type))
                events, after = await self._read_feed(kit, start)
                keys = [e.key for e in self._of_type(kind, events)]
                assert keys, f"{name}: the sample made no such event in the change feed"
                assert after is not None and after != start, (
                    f"{name}: the cursor did not advance past a page with events "
                    f"({start!r} before, {after!r} after): the feed would repeat for ever"
                )
                again = {e.key for e in (await self._read_feed(kit, after))[0]}
                assert not again & set(keys), (
                    f"{name}: reading from the cursor after the page gave its events again"
                )
                repeat = [
                    e.key for e in self._of_type(kind, (await self._read_feed(kit, start))[0])
                ]
                assert sorted(repeat) == sorted(keys), (
                    f"{name}: the same page read twice gave its events other keys ({keys} then "
                    f"{repeat}): the hub would store each of them twice; derive the key from "
                    "upstream's own sequence number or record number"
                )
                await self._poll_feed(kit)
                stored = len(self._stored(kit, kind))
                self._forget_cursor(kit)
                await self._poll_feed(kit)
                assert len(self._stored(kit, kind)) == stored, (
                    f"{name}: the feed read again from the start stored events twice"
                )

        self._run(check)

    # -- 13. a garbage page is the adapter's error -------------------------------------------

    def test_garbage_feed_page_is_a_clear_error(self, tmp_path: Path) -> None:
        """A feed page cut in half, and one still JSON but garbled (its lists and numbers
        replaced by text), make `changes()` raise a hub error (UpstreamBadResponse, say),
        never another exception, with none of the page's values in it; the hub's poller
        then stores nothing and keeps its cursor, and reads the events once the feed heals."""
        adapter = self._adapter_cls()
        fed = [e for e in adapter.event_types if e.source == "feed"]
        if not fed:  # no change feed: nothing to garble
            return
        kind = fed[0]

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                start = (await self._read_feed(kit, None))[1]
                await run_event_sample(kit, self._event_sample(kind.name))
                events = (await self._read_feed(kit, start))[0]
                forbidden = _forbidden(kit, *[e.payload.model_dump(mode="json") for e in events])
                for fault in _GARBAGE:
                    with kit.transport.inject(fault) as met:
                        exc = await self._feed_error(kit, start, fault)
                    assert met.count, (
                        f"{fault}: no upstream request met the fault: `changes()` made none "
                        "that `fault_paths` selects"
                    )
                    upstream = {CANARY}
                    for body in met.cut_answers:
                        upstream |= _answer_strings(body)
                    _assert_clean(f"{fault} feed page", exc, forbidden | upstream)
                with kit.transport.inject("scrambled"):
                    await self._poll_feed(kit)
                assert not self._stored(kit, kind), "a garbage page stored events"
                await self._poll_feed(kit)
                assert self._stored(kit, kind), "the event was lost after a garbage page"

        self._run(check)

    # -- 14. a push event's payload fits its declaration -------------------------------------

    @_over_events("push")
    def test_push_event_payload_fits_its_declaration(self, event_type: str, tmp_path: Path) -> None:
        """The sample payload of an event published on a push is the declared model, valid
        against the catalogue's JSON Schema, with a personal ID at a subject path when it
        carries personal data."""
        kind = self._event_type(event_type)

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                value = await run_event_sample(kit, self._event_sample(event_type))
                assert isinstance(value, Mapping), (
                    f"`events[{event_type!r}]` gave {type(value).__name__}, not a payload mapping"
                )
                payload = kind.payload.model_validate(dict(value))
                event = UpstreamEvent(kind.name, "conformance", payload)
                problems = self._misfits(kit, kind, event)
                assert not problems, f"{kind.qualified(kit.service)}: " + "; ".join(problems)

        self._run(check)

    # -- shared steps ------------------------------------------------------------------------

    def _event_type(self, name: str) -> EventType:
        adapter = self._adapter_cls()
        kind = next((e for e in adapter.event_types if e.name == name), None)
        if kind is None:
            raise AssertionError(f"{adapter.name} has no event type {name!r}")
        return kind

    def _event_sample(self, name: str) -> Any:
        sample = type(self).events.get(name)
        if sample is None:
            raise AssertionError(
                f"event type {name!r} has no sample in `events` (for a feed type, a function "
                "of the kit that makes one happen in the mock; see docs/conformance.md)"
            )
        return sample

    @staticmethod
    async def _read_feed(
        kit: ConformanceHub, cursor: str | None
    ) -> tuple[list[UpstreamEvent], str | None]:
        """Every event of the adapter's change feed after `cursor`, page by page to its end,
        and the cursor after them."""
        events: list[UpstreamEvent] = []
        for _ in range(_MAX_PAGES):
            page = await asyncio.wait_for(kit.adapter.changes(cursor, _PAGE), _READ_BOUND_S)
            assert isinstance(page, ChangePage), (
                f"changes() returned {type(page).__name__}, not a hub.events.ChangePage"
            )
            events.extend(page.events)
            moved = page.cursor is not None and page.cursor != cursor
            cursor = page.cursor if page.cursor is not None else cursor
            if not (page.more and moved):
                return events, cursor
        raise AssertionError(f"changes() said more was waiting after {_MAX_PAGES} pages")

    @staticmethod
    def _of_type(kind: EventType, events: Sequence[UpstreamEvent]) -> list[UpstreamEvent]:
        found = [e for e in events if getattr(e, "type", None) == kind.name]
        assert found, (
            f"the sample of {kind.name!r} made no such event in the adapter's change feed "
            f"(it gave {len(events)} event(s) of other types)"
        )
        return found

    @staticmethod
    def _misfits(kit: ConformanceHub, kind: EventType, event: Any) -> list[str]:
        """What in one event breaks its type's declaration (empty when nothing does)."""
        from jsonschema import Draft202012Validator  # the `testing` extra brings it

        if not isinstance(event, UpstreamEvent):
            return [f"changes() gave a {type(event).__name__}, not a hub.events.UpstreamEvent"]
        problems = []
        if not isinstance(event.key, str) or not event.key or len(event.key) > 200:
            problems.append("the event's key is not a string of 1..200 characters")
        if not isinstance(event.payload, kind.payload):
            got = type(event.payload).__name__
            return [*problems, f"the payload is a {got}, not the declared {kind.payload.__name__}"]
        data = event.payload.model_dump(mode="json")
        schema = kind.describe(kit.service)["payload_schema"]
        problems += [
            f"the payload breaks the catalogue's JSON Schema at "
            f"{'/'.join(map(str, e.absolute_path)) or '(the payload)'}: {e.message[:200]}"
            for e in Draft202012Validator(schema).iter_errors(data)
        ]
        subjects = [value_at(data, path) for path in kind.subjects]
        if kind.personal_data and not any(isinstance(v, str) and v for v in subjects):
            problems.append(
                f"it carries personal data, but none of its subject paths {list(kind.subjects)} "
                "holds a personal ID: no access report would show its deliveries"
            )
        if kind.province:
            province = value_at(data, kind.province)
            if province is not None and not isinstance(province, str):
                problems.append(f"the province at {kind.province!r} is not a string")
        return problems

    @staticmethod
    async def _feed_error(kit: ConformanceHub, cursor: str | None, fault: Fault) -> HubError:
        try:
            page = await asyncio.wait_for(kit.adapter.changes(cursor, _PAGE), _READ_BOUND_S)
        except HubError as exc:
            return exc
        except Exception as exc:
            raise AssertionError(
                f"{fault} feed page: changes() raised {type(exc).__name__}, not a hub error "
                "(raise hub.errors.UpstreamBadResponse for a page that is not what the "
                "contract says)"
            ) from exc
        shown = len(page.events) if isinstance(page, ChangePage) else page
        raise AssertionError(
            f"{fault} feed page: changes() answered ({shown} events) instead of failing"
        )

    @staticmethod
    async def _poll_feed(kit: ConformanceHub) -> None:
        """One read of the change feed by the hub's own poller (stored, the cursor moved)."""
        events = kit.hub.events
        assert events is not None, "the hub runs without its events capability"
        await events.feeds.run_once()

    @staticmethod
    def _stored(kit: ConformanceHub, kind: EventType) -> list[list[str]]:
        """The subjects of each event of this type the hub stored."""
        from hub.capabilities.events.models import Event

        with Session(kit.hub.engine) as session:
            query = select(Event).where(col(Event.type) == kind.qualified(kit.service))
            return [list(row.subjects or ()) for row in session.exec(query).all()]

    @staticmethod
    def _forget_cursor(kit: ConformanceHub) -> None:
        """The hub's cursor of this feed lost: the next poll reads it from the start."""
        from hub.capabilities.events.models import EventCursor

        with Session(kit.hub.engine) as session:
            row = session.get(EventCursor, kit.service)
            if row is not None:
                row.cursor = None
                session.add(row)
                session.commit()
